"""Convert an official MonoDGP checkpoint (PuFanqi23/MonoDGP) into a perception checkpoint.

    python tools/model_converters/monodgp_official.py OFFICIAL.pth OUT.pth \
        [--config configs/monodgp/monodgp_r50_official_kitti.py]

As ``monodetr_official.py`` (formats, checks, class and size order), with MonoDGP's key map: the 2D decoder
(``det2d_transformer``, which also holds the encoder), the 3D decoder (``det3d_transformer``), the region
segmentation head, and heads whose box branch is shared by both decoders. The official model builds a
fourth clone of each head and the region head's ``deconv`` layers, which its forward never reads; they are
dropped, as is the depth positional embedding MonoDGP no longer adds.
"""
from monodetr_official import (_ffn_rules, _mha_rules, backbone_neck_rules, convert, depth_aware_decoder_rules,
                               depth_predictor_rules, encoder_rules, head_rules, parse_args)


def decoder_2d_rules() -> list:
    """The 2D decoder's Deformable-DETR layers: self-attention, deformable cross-attention, FFN."""
    layer, project = 'det2d_transformer.decoder.layers.{i}', 'transformer.decoder_2d.layers.{i}'
    return [
        *_mha_rules(f'{layer}.self_attn', f'{project}.self_attn'),
        (f'{layer}.cross_attn.{{*}}', f'{project}.cross_attn.{{*}}'),
        *_ffn_rules(layer, project, dict(norm1=0, norm2=1, norm3=2)),
    ]


def region_head_rules() -> list:
    """The region segmentation head: lateral projections, SE blocks, per-level predictors."""
    return [
        ('region_head.input_proj.{i}.{j}.{p}', 'region_head.lateral_convs.{i}.{j}.{p}'),
        ('region_head.pred.{i}.{j}.{p}', 'region_head.predictors.{i}.{j}.{p}'),
        ('region_head.attention.{i}.fc1.{p}', 'region_head.attentions.{i}.conv1.conv.{p}'),
        ('region_head.attention.{i}.fc2.{p}', 'region_head.attentions.{i}.conv2.conv.{p}'),
    ]


MONODGP_RULES = (backbone_neck_rules() + encoder_rules('det2d_transformer') + decoder_2d_rules()
                 + depth_aware_decoder_rules('det3d_transformer.decoder', qk_proj=False)
                 + depth_predictor_rules(with_pos_embed=False) + region_head_rules() + head_rules(3))
# keys of the official state dict that its forward never reads (README §10 of the parity oracles)
MONODGP_UNUSED = (r'(class_embed|bbox_embed|dim_embed_3d|angle_embed|depth_embed)\.3\..*', r'region_head\.deconv\..*',
                  r'depth_predictor\.depth_pos_embed\.weight')
MONODGP_ALIASES = (('det2d_transformer.decoder.bbox_embed.{*}', 'bbox_embed.{*}'),
                   ('det3d_transformer.decoder.bbox_embed.{*}', 'bbox_embed.{*}'))


def convert_monodgp(src: str, dst: str, config: str = 'configs/monodgp/monodgp_r50_official_kitti.py') -> None:
    """Convert the official MonoDGP checkpoint ``src`` into ``dst`` for the model of ``config``."""
    convert(src, dst, config, MONODGP_RULES, MONODGP_UNUSED, MONODGP_ALIASES, 'MonoDGP')


def main() -> None:
    args = parse_args('Convert an official MonoDGP checkpoint into a perception checkpoint',
                      'configs/monodgp/monodgp_r50_official_kitti.py')
    convert_monodgp(args.src, args.dst, args.config)


if __name__ == '__main__':
    main()
