"""Convert an official MonoDETR checkpoint (ZrrSkywalker/MonoDETR) into a perception checkpoint.

    python tools/model_converters/monodetr_official.py OFFICIAL.pth OUT.pth \
        [--config configs/monodetr/monodetr_r50_official_kitti.py]

The official trainer saves ``{'model_state': ..., 'optimizer_state': ..., 'epoch': ...}``; a bare state dict
is read too. Every official key is mapped to the model that ``--config`` builds (the official-behaviour
config by default); the converted weights must then fill that model exactly. Keys the official forward
never reads (listed in ``UNUSED``) are dropped, the aliases of tied box-refinement heads must equal their
canonical tensor, and anything else unknown or missing stops the conversion with the keys named. The
output is an mmengine checkpoint (``state_dict`` and ``meta.dataset_meta``) with its ``.sha256``.

The official class order is Pedestrian, Car, Cyclist; the class rows are reordered to the config's
``class_names``. The official 3D size is (h, w, l), the project's (l, h, w): the size branches' last
rows are reordered too.

``monodgp_official.py`` reuses the machinery here with MonoDGP's key map.
"""
import argparse
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import Tensor

from perception.engine.checkpoint import load_from_local, write_checksum
from perception.fileio import atomic_write
from perception.models.layers.depth_bins import lid_bin_centers
from perception.registry import MODELS

OFFICIAL_CLASSES = ('Pedestrian', 'Car', 'Cyclist')
# project size order (l, h, w) from the official (h, w, l)
SIZE_ORDER = [2, 0, 1]

# (official template, project template); ``{name}`` matches one dotted field of digits, ``{*}`` the rest of
# the key, ``{name:regex}`` what the regex allows.
Rule = Tuple[str, str]


def _ffn_rules(official: str, project: str, norms: Dict[str, int]) -> List[Rule]:
    """The FFN's two linears and the layer's post-norms (official ``normX`` -> project ``norms.k``)."""
    rules = [(f'{official}.linear1.{{p}}', f'{project}.ffn.layers.0.0.{{p}}'),
             (f'{official}.linear2.{{p}}', f'{project}.ffn.layers.1.{{p}}')]
    return rules + [(f'{official}.{name}.{{p}}', f'{project}.norms.{k}.{{p}}') for name, k in norms.items()]


def _mha_rules(official: str, project: str) -> List[Rule]:
    """``nn.MultiheadAttention`` inside mmcv's ``MultiheadAttention`` wrapper (``.attn``)."""
    return [(f'{official}.in_proj_{{p}}', f'{project}.attn.in_proj_{{p}}'),
            (f'{official}.out_proj.{{p}}', f'{project}.attn.out_proj.{{p}}')]


def backbone_neck_rules() -> List[Rule]:
    """torchvision ResNet (``backbone.0.body``) and the input projections (3 levels + 1 extra)."""
    return [
        ('backbone.0.body.{*}', 'backbone.{*}'),
        ('input_proj.{i:[0-2]}.0.{p}', 'neck.convs.{i}.conv.{p}'),
        ('input_proj.{i:[0-2]}.1.{p}', 'neck.convs.{i}.gn.{p}'),
        ('input_proj.3.0.{p}', 'neck.extra_convs.0.conv.{p}'),
        ('input_proj.3.1.{p}', 'neck.extra_convs.0.gn.{p}'),
    ]


def encoder_rules(official: str) -> List[Rule]:
    """The deformable visual encoder, its level embedding, the query embedding and reference points."""
    layer = f'{official}.encoder.layers.{{i}}'
    return [
        (f'{official}.level_embed', 'transformer.level_embed'),
        (f'{official}.reference_points.{{p}}', 'transformer.reference_points.{p}'),
        ('query_embed.weight', 'transformer.query_embedding.weight'),
        (f'{layer}.self_attn.{{*}}', 'transformer.encoder.layers.{i}.self_attn.{*}'),
        *_ffn_rules(layer, 'transformer.encoder.layers.{i}', dict(norm1=0, norm2=1)),
    ]


def depth_aware_decoder_rules(official: str, qk_proj: bool) -> List[Rule]:
    """The depth-aware decoder layers: depth cross-attention, self-attention (with the official extra query
    and key maps when ``qk_proj``), deformable cross-attention, FFN."""
    layer, project = f'{official}.layers.{{i}}', 'transformer.decoder.layers.{i}'
    rules = [
        *_mha_rules(f'{layer}.cross_attn_depth', f'{project}.depth_cross_attn'),
        *_mha_rules(f'{layer}.self_attn', f'{project}.self_attn'),
        (f'{layer}.cross_attn.{{*}}', f'{project}.cross_attn.{{*}}'),
        *_ffn_rules(layer, project, dict(norm_depth=0, norm2=1, norm1=2, norm3=3)),
    ]
    if qk_proj:
        rules += [(f'{layer}.sa_{official_name}.{{p}}', f'{project}.{name}.{{p}}') for official_name, name in (
            ('qcontent_proj', 'q_content_proj'), ('qpos_proj', 'q_pos_proj'), ('kcontent_proj', 'k_content_proj'),
            ('kpos_proj', 'k_pos_proj'))]
    return rules


def depth_predictor_rules(with_pos_embed: bool) -> List[Rule]:
    """The depth predictor's convolutions, classifier and one-layer depth encoder."""
    layer, project = 'depth_predictor.depth_encoder.layers.0', 'depth_predictor.depth_encoder'
    rules = [
        ('depth_predictor.{m:downsample|proj|upsample|depth_head|depth_classifier}.{*}', 'depth_predictor.{m}.{*}'),
        *_mha_rules(f'{layer}.self_attn', f'{project}.self_attn'),
        *_ffn_rules(layer, project, dict(norm1=0, norm2=1)),
    ]
    if with_pos_embed:
        rules.append(('depth_predictor.depth_pos_embed.weight', 'depth_predictor.depth_pos_embed.weight'))
    return rules


def head_rules(num_layers: int) -> List[Rule]:
    """The per-layer heads, one clone per decoder layer."""
    layers = '|'.join(str(i) for i in range(num_layers))
    return [(f'{official}.{{l:{layers}}}.{{*}}', f'bbox_head.{project}.{{l}}.{{*}}') for official, project in (
        ('class_embed', 'cls_branches'), ('bbox_embed', 'reg_branches'), ('dim_embed_3d', 'dim_branches'),
        ('angle_embed', 'angle_branches'), ('depth_embed', 'depth_branches'))]


MONODETR_RULES = (backbone_neck_rules() + encoder_rules('depthaware_transformer')
                  + depth_aware_decoder_rules('depthaware_transformer.decoder', qk_proj=True)
                  + depth_predictor_rules(with_pos_embed=True) + head_rules(3))
# keys of the official state dict that its forward never reads (README §10 of the parity oracles)
MONODETR_UNUSED = (r'depthaware_transformer\.decoder\.layers\.\d+\.sa_v_proj\..*',
                   r'depthaware_transformer\.decoder\.(query_scale|ref_point_head)\..*', r'label_enc\.weight')
# tied modules registered under a second name: (alias template, canonical template)
MONODETR_ALIASES = (('depthaware_transformer.decoder.bbox_embed.{*}', 'bbox_embed.{*}'),
                    ('depthaware_transformer.decoder.dim_embed.{*}', 'dim_embed_3d.{*}'))


def _pattern(template: str) -> 're.Pattern':
    """Regex of a key template (see ``Rule``)."""
    parts, pos = [], 0
    for m in re.finditer(r'\{(\w+|\*)(?::([^}]*))?\}', template):
        parts.append(re.escape(template[pos:m.start()]))
        name, allowed = m.group(1), m.group(2)
        if name == '*':
            parts.append(r'(?P<rest>.+)')
        else:
            parts.append(f'(?P<{name}>{allowed or r"[^.]+"})')
        pos = m.end()
    parts.append(re.escape(template[pos:]))
    return re.compile(''.join(parts) + r'\Z')


def _fill(template: str, fields: Dict[str, str]) -> str:
    return re.sub(r'\{(\w+|\*)(?::[^}]*)?\}', lambda m: fields['rest' if m.group(1) == '*' else m.group(1)],
                  template)


def _translate(key: str, pairs: Sequence[Rule]) -> Optional[str]:
    """The key that the first matching (from, to) template pair gives, or None."""
    for source, target in pairs:
        m = _pattern(source).match(key)
        if m:
            return _fill(target, m.groupdict())
    return None


def read_official(path: str) -> 'OrderedDict[str, Tensor]':
    """The official state dict of a checkpoint file: ``model_state`` of the official trainer's checkpoints,
    or a bare state dict (read with ``torch.load(weights_only=True)``)."""
    checkpoint = load_from_local(path, map_location='cpu', verify=False)
    state_dict = checkpoint.get('model_state', checkpoint)
    if not isinstance(state_dict, dict) or not all(isinstance(v, Tensor) for v in state_dict.values()):
        raise ValueError(f'{path}: expected an official checkpoint ({{"model_state": state dict}}) or a state '
                         f'dict of tensors, got keys {sorted(checkpoint)[:10]}')
    return OrderedDict(state_dict)


def class_order(class_names: Sequence[str]) -> List[int]:
    """Official class index of each of the project's classes."""
    unknown = [name for name in class_names if name not in OFFICIAL_CLASSES]
    if unknown:
        raise ValueError(f'the official models predict {OFFICIAL_CLASSES}; the config names {unknown} too')
    return [OFFICIAL_CLASSES.index(name) for name in class_names]


def convert_state_dict(official: Dict[str, Tensor], model_state: Dict[str, Tensor], rules: Sequence[Rule],
                       unused: Sequence[str], aliases: Sequence[Rule], class_names: Sequence[str],
                       depth_bins: Tuple[int, float, float], source: str = 'the checkpoint'
                       ) -> 'OrderedDict[str, Tensor]':
    """Map an official state dict onto a model's keys.

    Args:
        official: the official state dict.
        model_state: the target model's state dict (its keys and shapes).
        rules: (official template, project template) pairs, first match wins.
        unused: regexes of official keys that are dropped.
        aliases: (alias template, canonical template) pairs of tied tensors, which must be equal.
        class_names: the project's classes, in its label order.
        depth_bins: (bins, min, max) of the model's depth predictor; the official ``depth_bin_values``
            must be these LID bins.
        source: the checkpoint's name, for the messages.

    Returns:
        The state dict of the model, in its key order.

    Raises:
        KeyError: official keys nothing maps (unexpected), model entries no official key fills
            (missing, named by their official keys), or tied tensors that differ.
        ValueError: shapes that do not fit, or other depth bins.
    """
    converted, unexpected, untied = {}, [], []
    for key, value in official.items():
        canonical = _translate(key, aliases)
        if canonical is not None:
            if canonical not in official or not torch.equal(official[canonical], value):
                untied.append(f'{key} (tied to {canonical})')
            continue
        if any(re.fullmatch(pattern, key) for pattern in unused):
            continue
        if key == 'depth_predictor.depth_bin_values':
            expected = lid_bin_centers(*depth_bins)
            if value.shape != expected.shape or not torch.allclose(value.float(), expected, atol=1e-4):
                raise ValueError(f'{source}: depth_predictor.depth_bin_values are not the LID bins of the config '
                                 f'(bins, min, max) = {depth_bins}')
            continue
        target = _translate(key, rules)
        if target is None or target not in model_state:
            unexpected.append(key if target is None else f'{key} (-> {target}, which the model lacks)')
            continue
        converted[target] = value
    if untied:
        raise KeyError(f'{source}: tied weights that differ from their canonical key: {untied}')

    generated = [k for k in model_state if k.endswith('num_batches_tracked')]
    missing = [k for k in model_state if k not in converted and k not in generated]
    if unexpected or missing:
        inverse = [(target, source_key) for source_key, target in rules]
        named = [f'{_translate(k, inverse) or "?"} (for {k})' for k in missing]
        raise KeyError(f'{source} does not fit the model: {len(unexpected)} unexpected keys {unexpected}; '
                       f'{len(missing)} missing keys {named}')

    order = class_order(class_names)
    state_dict = OrderedDict()
    for key, reference in model_state.items():
        if key in generated:
            state_dict[key] = torch.zeros_like(reference)
            continue
        value = converted[key]
        if re.fullmatch(r'bbox_head\.cls_branches\.\d+\.(weight|bias)', key):
            value = value[order]
        elif re.fullmatch(r'bbox_head\.dim_branches\.\d+\.layers\.1\.(weight|bias)', key):
            value = value[SIZE_ORDER]
        if value.shape != reference.shape:
            raise ValueError(f'{source}: {_translate(key, [(t, s) for s, t in rules])} has shape {tuple(value.shape)}, '
                             f'the model\'s {key} {tuple(reference.shape)}')
        state_dict[key] = value.to(reference.dtype).clone()
    return state_dict


def build_model_state(config: str) -> Tuple[Dict[str, Tensor], List[str], Tuple[int, float, float]]:
    """The state dict (keys and shapes), class names and depth bins of the model a config builds, without
    its pretrained backbone."""
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'perception'))
    cfg.model.backbone.init_cfg = None
    model = MODELS.build(cfg.model)
    predictor = model.depth_predictor
    return (model.state_dict(), list(cfg.class_names),
            (predictor.num_depth_bins, predictor.depth_min, predictor.depth_max))


def convert(src: str, dst: str, config: str, rules: Sequence[Rule], unused: Sequence[str],
            aliases: Sequence[Rule], model_name: str) -> None:
    """Read, convert and write one checkpoint (see the module docstring)."""
    official = read_official(src)
    model_state, class_names, depth_bins = build_model_state(config)
    state_dict = convert_state_dict(official, model_state, rules, unused, aliases, class_names, depth_bins,
                                    source=src)
    checkpoint = dict(state_dict=state_dict,
                      meta=dict(dataset_meta=dict(classes=class_names),
                                converted_from=f'official {model_name} checkpoint {osp.basename(src)}',
                                config=osp.basename(config)))
    atomic_write(dst, lambda tmp: torch.save(checkpoint, tmp))
    write_checksum(dst)
    print(f'{src}: {len(official)} official keys -> {dst}: {len(state_dict)} keys ({model_name}, '
          f'classes {class_names})')


def parse_args(description: str, default_config: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help='official checkpoint ({"model_state": ...} or a bare state dict)')
    parser.add_argument('dst', help='perception checkpoint to write')
    parser.add_argument('--config', default=default_config, help='config of the model to convert for')
    return parser.parse_args()


def convert_monodetr(src: str, dst: str, config: str = 'configs/monodetr/monodetr_r50_official_kitti.py') -> None:
    """Convert the official MonoDETR checkpoint ``src`` into ``dst`` for the model of ``config``."""
    convert(src, dst, config, MONODETR_RULES, MONODETR_UNUSED, MONODETR_ALIASES, 'MonoDETR')


def main() -> None:
    args = parse_args('Convert an official MonoDETR checkpoint into a perception checkpoint',
                      'configs/monodetr/monodetr_r50_official_kitti.py')
    convert_monodetr(args.src, args.dst, args.config)


if __name__ == '__main__':
    main()
