"""OPEN's pieces against hand-computed values: the sine embeddings, the lifting of object centres, the
object-wise position embedding, DepthFocalLoss, the NMS-free codes and the LiDAR depth maps."""
import math

import numpy as np
import pytest
import torch

from perception.models.dense_heads import OPENObjectHead, lidar_depth_maps
from perception.models.detectors import ObjectWisePositionEmbedding, lift_object_centers
from perception.models.layers import nerf_positional_encoding, pos2posemb1d, pos2posemb3d
from perception.models.losses import DepthFocalLoss
from perception.models.task_modules import NMSFreeBBoxCoder

# A camera looking along the LiDAR x axis: camera (x, y, z) = LiDAR (-y, -z, x), f = 100 px, centre (50, 25).
K = np.array([[100., 0, 50, 0], [0, 100., 25, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
LIDAR2CAM = np.array([[0., -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
LIDAR2IMG = torch.tensor(K @ LIDAR2CAM, dtype=torch.float32)[None]


def axis_features(p, temperature=10000.):
    """4 features of one coordinate by hand: frequencies 2*pi / T^0 and 2*pi / T^(2/4) = 2*pi / 100."""
    w0, w1 = 2 * math.pi, 2 * math.pi / temperature ** 0.5
    return [math.sin(p * w0), math.cos(p * w0), math.sin(p * w1), math.cos(p * w1)]


def test_pos2posemb3d_is_sine_cosine_interleaved_in_y_x_z_order():
    point = torch.tensor([[0.1, 0.2, 0.3]])
    expected = axis_features(0.2) + axis_features(0.1) + axis_features(0.3)
    np.testing.assert_allclose(pos2posemb3d(point, num_feats=4)[0].numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(pos2posemb1d(torch.tensor([[0.7]]), num_feats=4)[0].numpy(), axis_features(0.7),
                               atol=1e-6)


def test_nerf_encoding_orders_frequencies_then_sin_cos():
    values = torch.tensor([[0.3, -0.2]])
    expected = [math.sin(0.3), math.sin(-0.2), math.cos(0.3), math.cos(-0.2),
                math.sin(0.6), math.sin(-0.4), math.cos(0.6), math.cos(-0.4)]
    np.testing.assert_allclose(nerf_positional_encoding(values, 2)[0].numpy(), expected, atol=1e-6)


def test_object_centre_is_lifted_to_the_lidar_frame():
    # LiDAR (10, 2, -1) -> camera (-2, 1, 10) -> pixel (100 * -2 / 10 + 50, 100 * 1 / 10 + 25) = (30, 35), depth 10
    centre = lift_object_centers(torch.tensor([[[30., 35.]]]), torch.tensor([[10.]]), LIDAR2IMG)
    np.testing.assert_allclose(centre[0, 0].numpy(), [10., 2., -1.], atol=1e-5)


def test_object_centres_decoded_from_the_2d_branch():
    head = OPENObjectHead(num_classes=2, embed_dims=32, encoder=dict(feedforward_channels=32, num_heads=4),
                          depth_net=dict(deform_groups=1))
    outputs = dict(centers=torch.tensor([[[0.25, 0.5]]]), center_depth=torch.tensor([[[0.5]]]))
    uv, depth = head.decode_centers(outputs, (64, 128))
    # normalised 0 and 1 are the image edges, pixel centres at integers: 0.25 * 128 - 0.5
    np.testing.assert_allclose(uv[0, 0].numpy(), [31.5, 31.5])
    np.testing.assert_allclose(depth[0, 0].item(), 0.5 * (61.2 - 1e-5) + 1e-5, rtol=1e-6)


def test_object_wise_position_embedding_embeds_the_lifted_centre():
    module = ObjectWisePositionEmbedding(embed_dims=8)
    module.encoder = torch.nn.Identity()
    emb = module(lidar2img=LIDAR2IMG, object_centers=torch.tensor([[[30., 35.]]]), object_depths=torch.tensor([[10.]]))
    normalized = [(10 + 61.2) / 122.4, (2 + 61.2) / 122.4, (-1 + 10) / 20]
    x, y, z = (math.log(p / (1 - p)) for p in normalized)
    expected = axis_features(y) + axis_features(x) + axis_features(z)
    np.testing.assert_allclose(emb[0, 0].numpy(), expected, atol=1e-4)


def test_depth_focal_loss_hand_computed():
    # logit 0 with soft target 0.8: BCE = ln 2, alpha weight 0.75 - 0.5 * 0.8, modulation (0.8 - 0.5)^2;
    # logit 1 with target 0: BCE = ln(1 + e), alpha weight 0.75, modulation sigmoid(1)^2
    sig1 = 1 / (1 + math.exp(-1))
    expected = math.log(2) * 0.35 * 0.09 + math.log(1 + math.e) * 0.75 * sig1 ** 2
    loss = DepthFocalLoss(gamma=2.0, alpha=0.25, loss_weight=2.0)
    value = loss(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.8, 0.0]]), avg_factor=0.5)
    np.testing.assert_allclose(value.item(), 2.0 * expected / 0.5, rtol=1e-6)
    # a hard target of 1 at alpha 0.25 weighs the positive by alpha
    positive = DepthFocalLoss()(torch.tensor([[0.0]]), torch.tensor([[1.0]]), reduction_override='sum')
    np.testing.assert_allclose(positive.item(), math.log(2) * 0.25 * 0.25, rtol=1e-6)


def test_nms_free_codes_round_trip_and_top_k():
    coder = NMSFreeBBoxCoder(post_center_range=(-10, -10, -5, 10, 10, 5), max_num=2, num_classes=3)
    boxes = torch.tensor([[1., 2., 0.5, 4., 2., 1.5, 0.3, 1., -1.], [30., 0., 0., 1., 1., 1., 0., 0., 0.]])
    codes = coder.encode(boxes)
    np.testing.assert_allclose(codes[0].numpy(), [1, 2, 0.5, math.log(4), math.log(2), math.log(1.5),
                                                  math.sin(0.3), math.cos(0.3), 1, -1], rtol=1e-6)
    np.testing.assert_allclose(coder.denormalize(codes).numpy(), boxes.numpy(), atol=1e-6)
    scores = torch.tensor([[-5., 2., -5.], [3., -5., -5.]])
    decoded = coder.decode(scores, codes)
    # the best score's box (query 1) lies out of range: only query 0, class 1, is kept
    assert decoded['labels'].tolist() == [1] and decoded['query_inds'].tolist() == [0]
    np.testing.assert_allclose(decoded['scores'].numpy(), [torch.sigmoid(torch.tensor(2.)).item()])


def test_lidar_depth_maps_keep_the_nearest_point_per_cell():
    # two points on the same ray at 10 and 20 m, one at 5 m elsewhere, one behind the camera
    points = torch.tensor([[10., 2., -1.], [20., 4., -2.], [5., 0., 0.], [-5., 0., 0.]])
    maps = lidar_depth_maps(points, LIDAR2IMG, (50, 100), (5, 10))
    # pixel (30, 35) -> cell (row 3, col 3); pixel (50, 25) -> cell (2, 5)
    assert maps.shape == (1, 5, 10)
    assert maps[0, 3, 3].item() == pytest.approx(10.0) and maps[0, 2, 5].item() == pytest.approx(5.0)
    assert int((maps > 0).sum()) == 2
