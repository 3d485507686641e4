"""The model zoo: per-family structure the papers prescribe, and ONNX parity for every registered model."""

import numpy as np
import pytest
import torch
from torch import nn

from mobiledeploy.analysis import analyse, analyse_model
from mobiledeploy.registry import build_model, list_models

# A size every model runs at (32x32: a 1x1 map at stride 32); AlexNet's 6x6 adaptive pool exports
# only from a map whose side is a multiple of 6, which takes a 224x224 input.
# MobileViT's 1x1 last map at 32x32 is resized to a 2x2 patch and back: with this test's dynamic batch, torch's
# exporter computes that Resize's scales by integer division (1 // 2 = 0), which ONNX Runtime refuses; at 64 no
# map needs resizing (the export pipeline's static shapes resize fine: 7x7 at 224).
PARITY_RESOLUTION = {"alexnet": 224, "mobilevit_xxs": 64}


def _modules(model: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, kind)]


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- SqueezeNet -----------------------------------------------------------------------------------

def test_fire_bypass_variants_change_params_as_the_paper_says():
    from mobiledeploy.models.squeezenet import Fire

    params = {b: _params(build_model("squeezenet1_0", bypass=b)) for b in ("none", "simple", "complex")}
    assert params["none"] == 1_248_424  # paper Table 1
    assert params["simple"] == params["none"]  # a simple bypass is just a wire
    # complex: a 1x1 conv (with bias) around fire2/4/6/8, where the channel count changes
    bypassed = ((96, 128), (128, 256), (256, 384), (384, 512))
    assert params["complex"] - params["none"] == sum(cin * cout + cout for cin, cout in bypassed)
    fires = _modules(build_model("squeezenet1_0", bypass="simple"), Fire)
    assert [type(f.bypass).__name__ for f in fires] == ["NoneType", "Identity"] * 4
    fires = _modules(build_model("squeezenet1_0", bypass="complex"), Fire)
    assert [type(f.bypass).__name__ for f in fires] == ["Conv2d", "Identity"] * 4


def test_squeezenet_1_1_has_2_4x_less_computation():
    v10, v11 = analyse("squeezenet1_0", 224), analyse("squeezenet1_1", 224)
    assert v10.macs / v11.macs == pytest.approx(2.4, rel=0.03)
    assert v11.params < v10.params


# --- MobileNet v2 / v3, MnasNet ---------------------------------------------------------------------

def test_mobilenet_v2_linear_bottlenecks_and_residuals():
    from mobiledeploy.models.mobilenet_v2 import InvertedResidual

    blocks = _modules(build_model("mbv2"), InvertedResidual)
    assert len(blocks) == 17 and sum(b.use_residual for b in blocks) == 10
    for block in blocks:
        *_, project = block.conv
        assert len(project) == 2  # conv + BN, no activation: the linear bottleneck
        assert all(isinstance(a, nn.ReLU6) for a in _modules(block, nn.ReLU6))


def test_mobilenet_v3_uses_hard_swish_and_hard_sigmoid_se():
    from mobiledeploy.models.common import SqueezeExcite

    for name, se_count in (("mbv3_large", 8), ("mbv3_small", 9)):
        model = build_model(name)
        assert _modules(model, nn.Hardswish), name
        se = _modules(model, SqueezeExcite)
        assert len(se) == se_count and all(isinstance(s.gate, nn.Hardsigmoid) for s in se)
        assert all(s.fc1.out_channels % 8 == 0 and s.fc1.out_channels <= s.fc1.in_channels // 4 + 7 for s in se)
        by_op = analyse_model(model, (1, 3, 64, 64)).by_op()
        assert by_op["hardswish"]["count"] > 0 and by_op["hardsigmoid"]["count"] == se_count


def test_mnasnet_a1_se_is_a_quarter_of_the_block_input():
    from mobiledeploy.models.common import SqueezeExcite
    from mobiledeploy.models.mnasnet import MBConv

    blocks = [b for b in _modules(build_model("mnasnet"), MBConv) if _modules(b, SqueezeExcite)]
    assert len(blocks) == 3 + 2 + 3  # the SE stages of Figure 7(a)
    for block in blocks:
        (se,) = _modules(block, SqueezeExcite)
        cin = block.conv[0][0].in_channels
        assert se.fc1.out_channels == int(cin * 0.25)


# --- Xception ---------------------------------------------------------------------------------------

def test_xception_has_36_conv_layers_and_identity_middle_flow():
    from mobiledeploy.models.xception import SeparableConv, XceptionBlock

    model = build_model("xception")
    stem = 2
    assert stem + len(_modules(model, SeparableConv)) == 36  # "36 convolutional layers" (Sec. 3)
    middle = _modules(model.middle_flow, XceptionBlock)
    assert len(middle) == 8 and all(isinstance(b.shortcut, nn.Identity) for b in middle)
    for sep in _modules(model, SeparableConv):
        depthwise, pointwise, _ = sep
        assert depthwise.groups == depthwise.in_channels and pointwise.kernel_size == (1, 1)


def test_xception_width_option_reaches_mobile_budgets():
    assert analyse("xception", 224, scale=0.25).macs < 0.35e9
    params = {s: _params(build_model("xception", scale=s)) for s in (0.5, 1.0)}
    assert params[1.0] == 22_855_952 and params[0.5] < 0.3 * params[1.0]


# --- CondenseNet ------------------------------------------------------------------------------------

@pytest.mark.parametrize("g", [4, 8])
def test_condensenet_index_select_is_a_permutation_feeding_g_groups(g):
    from mobiledeploy.models.condensenet import CondensedConv

    model = build_model("condensenet", g=g)
    convs = _modules(model, CondensedConv)
    assert len(convs) == sum((4, 6, 8, 10, 8))
    for conv in convs:
        index = conv.select.index
        assert torch.equal(index.sort().values, torch.arange(conv.norm.num_features))
        assert conv.conv.groups == g and conv.shuffle.groups == g
        # group j of the 1x1 conv reads input channels j, j+G, j+2G, ...
        first_group = index[: len(index) // g]
        assert torch.equal(first_group, torch.arange(0, len(index), g))
    assert model.fc.in_features == model.select.index.numel() == 2064 // 2


def test_condensenet_gather_matches_the_dense_equivalent():
    from mobiledeploy.models.condensenet import CondensedConv

    conv = CondensedConv(16, 32, groups=4).eval()
    with torch.no_grad():
        conv.norm.running_mean.normal_()
        x = torch.randn(2, 16, 5, 5)
        dense = nn.Conv2d(16, 32, 1, bias=False)
        # scatter the group conv's weights back to the input channels the index selected
        dense.weight.zero_()
        per_group_in, per_group_out = 16 // 4, 32 // 4
        for o in range(32):
            grp = o // per_group_out
            for k in range(per_group_in):
                dense.weight[o, conv.select.index[grp * per_group_in + k]] = conv.conv.weight[o, k]
        selected = conv.relu(conv.norm(conv.select(x)))
        inverse = torch.argsort(conv.select.index)
        expected = conv.shuffle(dense(selected[:, inverse]))
        assert torch.allclose(conv(x), expected, atol=1e-5)


# --- SqueezeNext, ShuffleNet + SE, ResNet / ResNeXt --------------------------------------------------

def test_squeezenext_block_is_a_two_stage_squeeze_with_separable_convs():
    from mobiledeploy.models.squeezenext import SqueezeNextBlock

    model = build_model("sqnxt")
    blocks = _modules(model, SqueezeNextBlock)
    assert len(blocks) == 21
    for block in blocks:
        convs = [seq[0] for seq in block.body]
        cout = convs[-1].out_channels
        assert [c.out_channels for c in convs] == [cout // 2, cout // 4, cout // 2, cout // 2, cout]
        assert [c.kernel_size for c in convs] == [(1, 1), (1, 1), (3, 1), (1, 3), (1, 1)]
    projected = [not isinstance(b.shortcut, nn.Identity) for b in blocks]
    assert projected == [i in (0, 6, 12, 20) for i in range(21)]  # the first block of each stage


def test_shufflenet_v1_se_gates_the_branch_before_the_add():
    from mobiledeploy.models.common import SqueezeExcite

    model = build_model("v1", g=3, scale=1.0, se=16)
    unit = model.stage3[1]
    assert isinstance(unit.se, SqueezeExcite) and unit.se.fc1.in_channels == unit.gconv2.out_channels
    assert unit.se.fc1.out_channels == 480 // 16
    added = analyse("v1", 64, g=3, se=16).macs - analyse("v1", 64, g=3).macs  # SE's FC cost is size-free
    se_fc = sum(s.fc1.weight.numel() + s.fc2.weight.numel() for s in _modules(model, SqueezeExcite))
    assert added == se_fc  # SE's FC layers are 1x1 convs on a 1x1 map: one mult-add per weight


def test_shufflenet_v2_se_gates_the_whole_unit_output():
    model = build_model("v2", scale=2.0, se=2)
    for unit in [*model.stage2, *model.stage3, *model.stage4]:
        cout = unit.branch2[-1][0].out_channels * 2
        assert unit.se.fc1.in_channels == cout and unit.se.fc1.out_channels == cout // 2
    added = analyse("v2", 64, scale=2.0, se=2).macs - analyse("v2", 64, scale=2.0).macs  # size-free, as above
    assert added == pytest.approx(6e6, rel=0.01)  # 597 - 591 MFLOPs in Table 8


def test_resnext_is_resnet_with_32_groups_of_4d():
    from mobiledeploy.models.resnet import Bottleneck

    for name, groups, width in (("resnet50", 1, 64), ("resnext50_32x4d", 32, 128)):
        first = _modules(build_model(name), Bottleneck)[0]
        conv3x3 = first.body[1][0]
        assert conv3x3.groups == groups and conv3x3.out_channels == width


def test_mobilenet_v4_conv_small_uses_the_four_uib_forms_of_table_11():
    from mobiledeploy.models.mobilenet_v4 import UIB

    blocks = _modules(build_model("mnv4_conv_s"), UIB)
    forms = []
    for block in blocks:
        depthwise = [m.groups > 1 for m in _modules(block, nn.Conv2d)]
        forms.append({(True, False, True, False): "extra_dw", (False, True, False): "ir",
                      (True, False, False): "convnext"}[tuple(depthwise)])
    assert forms == ["extra_dw", *["ir"] * 4, "convnext", "extra_dw", "extra_dw", *["ir"] * 4]
    assert sum(b.use_residual for b in blocks) == 10  # all but the two strided blocks (96 and 128 wide already)
    assert _params(build_model("mnv4_conv_s")) == 3_774_024  # timm's mobilenetv4_conv_small: 3.8 M


def test_mobilenet_v4_hybrid_medium_places_mobile_mqa_as_timm_and_its_attention_is_multi_query():
    from mobiledeploy.models.mobilenet_v4 import FusedIB, MobileMQA

    model = build_model("mnv4_hybrid_m")
    mqa = _modules(model, MobileMQA)
    assert [len(m.key) for m in mqa] == [3] * 4 + [1] * 4  # stage 2: keys/values downsampled (dw conv, BN, 1x1)
    assert [m.query.out_channels for m in mqa] == [4 * 64] * 8 and all(m.key[-1].out_channels == 64 for m in mqa)
    assert len(_modules(model, FusedIB)) == 1 and _params(model) == 11_074_648  # timm: 11.07 M
    with torch.no_grad():  # seeded layer scales (1 without a residual, 0.1 with): logits that int8 can resolve
        assert 0.01 < float(model(torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))).std()) < 100
    block = mqa[0].eval()
    with torch.no_grad():
        block.layer_scale.gamma.fill_(1.0)  # (seeded 0.1, timm's training init 1e-5: either would hide the attention)
        x = torch.randn(1, 160, 8, 8, generator=torch.Generator().manual_seed(0))
        y = block.norm(x)
        q = block.query(y).reshape(1, 4, 64, 64)  # (B, heads, key_dim, HW)
        k, v = block.key(y).flatten(2), block.value(y).flatten(2)  # (B, key_dim, hw/4): one key for all heads
        attn = torch.softmax(torch.einsum("bhkl,bkp->bhlp", q, k) / 8.0, dim=-1)
        o = torch.einsum("bhlp,bkp->bhkl", attn, v).reshape(1, 256, 8, 8)
        assert k.shape[-1] == 16 and torch.allclose(block(x), x + block.output(o), atol=1e-5)


def test_repvit_m1_folds_into_the_deploy_form_the_paper_counts():
    from mobiledeploy.models.common import deploy_form

    model = build_model("repvit_m1", num_classes=10)
    gen = torch.Generator().manual_seed(0)
    for bn in _modules(model, nn.modules.batchnorm._BatchNorm):  # BN statistics a trained model would have
        bn.running_mean.normal_(0.0, 0.1, generator=gen)
        bn.running_var.uniform_(0.5, 2.0, generator=gen)
        bn.weight.data.uniform_(0.5, 1.5, generator=gen)
    x = torch.randn(2, 3, 64, 64, generator=gen)
    with torch.no_grad():
        before = model(x)
        calls = deploy_form(model)
        after = model(x)
    assert calls["fuse"] == 84 and not _modules(model, nn.modules.batchnorm._BatchNorm)
    assert (after - before).abs().max() / (before.max() - before.min()) < 1e-4
    deployed = build_model("repvit_m1", num_classes=10, deploy=True)
    assert _params(model) == _params(deployed) and len(_modules(model, nn.Conv2d)) == len(_modules(deployed, nn.Conv2d))


def test_efficientvit_m0_cascades_its_heads_and_biases_attention_by_offset():
    from mobiledeploy.models.efficientvit import CascadedGroupAttention

    model = build_model("efficientvit_m0")
    attention = _modules(model, CascadedGroupAttention)
    assert [a.window for a in attention] == [7, 7, 7, 4, 4, 4]  # at 224 the last stage's 4x4 map is one window (timm)
    cga = attention[0].eval()
    with torch.no_grad():
        cga.attention_biases.normal_(generator=torch.Generator().manual_seed(0))
        x = torch.randn(1, 64, 3, 3, generator=torch.Generator().manual_seed(1))
        feats, feat, out = x.chunk(4, dim=1), None, []
        for i in range(4):  # by hand: head i's input is its channel slice plus head i-1's output
            feat = feats[i] if feat is None else feat + feats[i]
            q, k, v = cga.qkvs[i](feat).split([16, 16, 16], dim=1)
            q, k, v = cga.dws[i](q).flatten(2), k.flatten(2), v.flatten(2)
            pos = [(y, z) for y in range(3) for z in range(3)]
            bias = torch.stack([torch.stack([cga.attention_biases[i, abs(a[0] - b[0]) * 7 + abs(a[1] - b[1])] for b in pos])
                                for a in pos])
            attn = torch.softmax(q.transpose(1, 2) @ k / 4.0 + bias, dim=-1)
            feat = (v @ attn.transpose(1, 2)).reshape(1, 16, 3, 3)
            out.append(feat)
        assert torch.allclose(cga(x), cga.proj(torch.cat(out, 1)), atol=1e-5)


def test_levit_128s_attention_downsample_queries_every_second_token_with_an_offset_bias():
    from mobiledeploy.models.levit import Attention

    model = build_model("levit_128s")
    down = [m for m in _modules(model, Attention) if m.stride == 2]
    assert [(m.heads, m.value_dim, m.side) for m in down] == [(8, 64, 14), (16, 64, 7)]  # heads = width / 16, v 4x
    assert len(_modules(model, nn.Hardswish)) == 3 + 2 * (2 + 3 + 4 + 2)  # stem, then one per attention and per MLP
    att = down[0].eval()
    with torch.no_grad():
        att.attention_biases.normal_(generator=torch.Generator().manual_seed(0))
        x = torch.randn(1, 16, 128, generator=torch.Generator().manual_seed(1))  # a 4x4 grid of tokens
        k, v = att.qkv(x).reshape(1, 16, 8, 80).split([16, 64], dim=3)
        queries = [(y, z) for y in (0, 2) for z in (0, 2)]
        q = att.q(x[:, [4 * y + z for y, z in queries]]).reshape(1, 4, 8, 16)
        bias = torch.stack([torch.stack([att.attention_biases[:, abs(a[0] - y) * 14 + abs(a[1] - z)]
                                         for y in range(4) for z in range(4)], -1) for a in queries], 1)  # (heads, 4, 16)
        attn = torch.softmax(torch.einsum("bqhd,bkhd->bhqk", q, k) / 4.0 + bias, dim=-1)
        expected = att.proj(torch.einsum("bhqk,bkhd->bqhd", attn, v).reshape(1, 4, 512))
        assert torch.allclose(att(x), expected, atol=1e-5)


def test_fastvit_t8_reparameterizes_each_repmixer_into_one_depthwise_conv():
    from mobiledeploy.models.common import deploy_form
    from mobiledeploy.models.fastvit import MobileOneBlock, RepMixer

    model = build_model("fastvit_t8", num_classes=10)
    assert len(_modules(model, RepMixer)) == 2 + 2 + 4 + 2 and len(_modules(model, MobileOneBlock)) == 3 + 3 + 1 + 20
    embeds = [m for m in _modules(model, nn.Conv2d) if m.kernel_size == (7, 7) and m.stride == (2, 2)]
    assert [(m.in_channels, m.out_channels, m.groups) for m in embeds] == [(48, 96, 48), (96, 192, 96), (192, 384, 192)]
    gen = torch.Generator().manual_seed(0)
    for bn in _modules(model, nn.BatchNorm2d):  # BN statistics a trained model would have
        bn.running_mean.normal_(0.0, 0.1, generator=gen)
        bn.running_var.uniform_(0.5, 2.0, generator=gen)
        bn.weight.data.uniform_(0.5, 1.5, generator=gen)
    for mixer in _modules(model, RepMixer):
        mixer.layer_scale.gamma.data.uniform_(0.5, 1.5, generator=gen)
    x = torch.randn(1, 3, 32, 32, generator=gen)  # stage maps 8, 4, 2, 1: every tap of the 3x3 and 7x7 kernels used
    with torch.no_grad():
        before = model(x)
        calls = deploy_form(model)
        after = model(x)
    # every MobileOne block outside a RepMixer, every RepMixer, 3 patch embeddings; ConvMlp's conv-BN fused
    assert calls == {"fuse": 10, "reparameterize": 7 + 10 + 3, "switch_to_deploy": 0}
    assert not _modules(model, nn.BatchNorm2d) and not _modules(model, RepMixer)[0]._modules.get("mixer")
    assert (after - before).abs().max() / (before.max() - before.min()) < 1e-4
    assert _params(build_model("fastvit_t8", deploy=True)) == 3_994_216  # timm's pt291 table: 4.0 M


def test_edgenext_xx_small_splits_channels_and_attends_across_them():
    from mobiledeploy.models.edgenext import CrossCovarianceAttn, PositionalEncodingFourier, SplitTransposeBlock

    model = build_model("edgenext_xx_small")
    sdta = _modules(model, SplitTransposeBlock)
    assert [(len(b.convs), b.convs[0].in_channels, b.pos_embd is not None) for b in sdta] == [
        (1, 24, True), (2, 30, False), (3, 42, False)]  # 48 in 2 groups, 88 in 3 (30, 30, 28), 168 in 4
    assert [m.kernel_size[0] for m in _modules(model, nn.Conv2d) if m.groups > 1 and m.kernel_size[0] > 3] == [5, 7, 7, 7, 7, 7, 9]
    encoding = PositionalEncodingFourier(64)
    with torch.no_grad():  # the projection made the identity: the sin/cos table itself, against the formula
        encoding.token_projection.weight.copy_(torch.eye(64)[:, :, None, None])
        encoding.token_projection.bias.zero_()
        table = encoding((1, 3, 5))[0]
    i = torch.arange(32)
    freq = 10000.0 ** (2 * (i // 2) / 32)
    angle_y = (torch.arange(1, 4) / (3 + 1e-6) * 2 * torch.pi)[:, None] / freq  # rows, frequencies
    angle_x = (torch.arange(1, 6) / (5 + 1e-6) * 2 * torch.pi)[:, None] / freq
    wave = lambda a: torch.where(i % 2 == 0, a.sin(), a.cos())  # noqa: E731  (even: sin, odd: cos, interleaved)
    assert torch.allclose(table[:32, :, 0], wave(angle_y).T, atol=1e-5)
    assert torch.allclose(table[32:, 0, :], wave(angle_x).T, atol=1e-5)
    xca = _modules(model, CrossCovarianceAttn)[0].eval()
    with torch.no_grad():
        xca.temperature.uniform_(0.5, 2.0, generator=torch.Generator().manual_seed(0))
        x = torch.randn(1, 6, 48, generator=torch.Generator().manual_seed(1))  # 6 tokens, 4 heads of 12 channels
        q, k, v = xca.qkv(x).reshape(1, 6, 3, 4, 12).unbind(2)  # (batch, tokens, heads, channels)
        q, k = torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(k, dim=1)  # over the tokens
        attn = torch.softmax(torch.einsum("bnhc,bnhd->bhcd", q, k) * xca.temperature, dim=-1)  # channels x channels
        expected = xca.proj(torch.einsum("bhcd,bnhd->bnhc", attn, v).reshape(1, 6, 48))
        assert torch.allclose(xca(x), expected, atol=1e-5)


def test_efficientnet_b0_squeezes_a_quarter_of_the_block_input_with_swish_and_lite0_drops_se():
    from mobiledeploy.models.common import SqueezeExcite
    from mobiledeploy.models.efficientnet import MBConvSE

    b0, lite0 = build_model("efficientnet_b0"), build_model("efficientnet_lite0")
    blocks = _modules(b0, MBConvSE)
    assert len(blocks) == 16 and sum(b.use_residual for b in blocks) == 9  # Table 1: 1+2+2+3+3+4+1, firsts change shape
    for block in blocks:
        (se,) = _modules(block, SqueezeExcite)
        cin = block.block[0][0].in_channels
        assert se.fc1.out_channels == round(cin * 0.25) and isinstance(se.act, nn.SiLU) and isinstance(se.gate, nn.Sigmoid)
    assert not _modules(b0, nn.ReLU) and not _modules(lite0, SqueezeExcite) and not _modules(lite0, nn.SiLU)
    assert (_params(b0), _params(lite0)) == (5_288_548, 4_652_008)  # timm's efficientnet_b0 / _lite0: 5.29 M, 4.65 M


def test_efficientnet_swish_sigmoid_and_se_are_counted_by_hand_and_as_torch_counts():
    from mobiledeploy.analysis_check import cross_check
    from mobiledeploy.models.efficientnet import MBConvSE

    block = MBConvSE(16, 24, 3, 2, 6, nn.SiLU, 0.25).eval()  # stage 1's first block: 16 → 96 → (8x8 → 4x4) → 24
    by_op = analyse_model(block, (1, 16, 8, 8)).by_op()
    assert by_op["swish"]["count"] == 3 and by_op["swish"]["elementwise"] == 96 * 64 + 96 * 16 + 4  # expand, dw, SE
    assert by_op["sigmoid"]["elementwise"] == 96 and by_op["mul"]["elementwise"] == 96 * 16  # the gate, its scaling
    checked = cross_check(block, (1, 16, 8, 8))  # (the whole B0 at 224: 385,814,752 MACs, torch's counter exactly 2x)
    assert checked["macs"] == 16 * 96 * 64 + 96 * 9 * 16 + 2 * 96 * 4 + 96 * 24 * 16  # SE's 1x1 convs: 96 → 4 → 96
    assert checked["flop_counter_flops"] == 2 * checked["macs"] and checked["unexplained"] == 0


def test_mobileone_s0_trains_with_four_branches_and_reparameterizes_to_the_form_the_paper_counts():
    from mobiledeploy.converters.reparam import reparameterize
    from mobiledeploy.models.blocks import MobileOneBlock

    model = build_model("mobileone_s0", num_classes=10)
    blocks = _modules(model, MobileOneBlock)
    assert len(blocks) == 1 + 2 * (2 + 8 + 10 + 1) and [len(b.conv_kxk) for b in blocks] == [1] + [4] * 42
    assert [b.identity is not None for b in blocks[1:5]] == [False, True, True, True]  # stage 0 is 48 wide: 1x1 48 → 48
    assert [b.groups == b.cin for b in blocks[1:]] == [True, False] * 21  # depthwise 3x3, then pointwise 1x1
    assert _params(model) == 5_293_272 - 1_025_000 + 10_250  # timm's training-form S0 (5.29 M) with a 10-class head
    gen = torch.Generator().manual_seed(0)
    for bn in _modules(model, nn.BatchNorm2d):  # BN statistics a trained model would have
        bn.running_mean.normal_(0.0, 0.1, generator=gen)
        bn.running_var.uniform_(0.5, 2.0, generator=gen)
        bn.weight.data.uniform_(0.5, 1.5, generator=gen)
    training = analyse_model(model, (1, 3, 32, 32))  # maps 8, 4, 2, 1 after the stem: 7x smaller sides than at 224
    found = reparameterize(model, (1, 3, 32, 32))  # the export's --reparameterize step: called, checked, recorded
    assert found["calls"] == {"reparameterize": 43} and found["max_rel"] <= 1e-4 and not _modules(model, nn.BatchNorm2d)
    deployed = analyse_model(model, (1, 3, 32, 32))
    # at 224 with 1000 classes: 1,051,935,232 → 275,110,400 MACs (the paper's 275 M); convs scale by 1/49, the head
    # is 1024 x 10
    assert (training.macs, deployed.macs) == ((1_051_935_232 - 1_024_000) // 49 + 10_240, (275_110_400 - 1_024_000) // 49 + 10_240)
    assert _params(model) == _params(build_model("mobileone_s0", num_classes=10, deploy=True)) == 2_078_504 - 1_025_000 + 10_250


def test_aliases_users_expect():
    from mobiledeploy.registry import canonical_name

    expected = {"mbv2": "mobilenet_v2", "mbv3_large": "mobilenet_v3_large", "mbv3_small": "mobilenet_v3_small",
                "squeezenet": "squeezenet1_0", "squeezenet-1.1": "squeezenet1_1", "sqnxt": "squeezenext",
                "mnasnet": "mnasnet_a1", "resnext50": "resnext50_32x4d", "r50": "resnet50", "condensenet74": "condensenet"}
    assert {alias: canonical_name(alias) for alias in expected} == expected


# --- ONNX parity, every registered model -------------------------------------------------------------

@pytest.mark.parametrize("name", list_models())
def test_onnx_export_matches_torch(name, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = build_model(name, seed=0)
    size = PARITY_RESOLUTION.get(name, 32)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    path = tmp_path / f"{name}.onnx"
    with torch.no_grad():
        torch.onnx.export(model, (x[:1],), str(path), dynamo=False, opset_version=17, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})
        expected = model(x).numpy()
    graph = onnx.load(str(path))
    ops = {node.op_type for node in graph.graph.node}
    assert not ops & {"ATen", "PythonOp"}, ops
    if name == "condensenet":
        assert "Gather" in ops  # the index select, not a permutation conv or a MatMul
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    span = float(expected.max() - expected.min()) or 1.0
    assert np.abs(got - expected).max() / span < 1e-4


# --- TFLite, a representative subset (through the export pipeline) ----------------------------------

# ReLU6 + residuals; hard-swish + SE; fire concat; ceil-mode max pools; channel split + shuffle + padded max pool.
TFLITE_SUBSET = [("mobilenet_v2", {"alpha": 0.35}), ("mobilenet_v3_small", {}), ("squeezenet1_1", {}),
                 ("squeezenet1_0", {}), ("shufflenet_v2", {"scale": 0.5})]


@pytest.mark.slow
@pytest.mark.parametrize("name, config", TFLITE_SUBSET, ids=[n for n, _ in TFLITE_SUBSET])
def test_tflite_fp32_and_int8_are_builtin_only_with_parity(name, config, tmp_path):
    converters = pytest.importorskip("mobiledeploy.converters")
    pytest.importorskip("onnx2tf")
    from mobiledeploy.models.common import count_depthwise_convs
    from mobiledeploy.registry import build_model
    res = converters.export_model(name, config, resolution=96, out_dir=tmp_path, formats=("onnx", "fp32", "int8"))
    manifest = res.manifest
    for fmt in ("onnx", "fp32", "int8"):
        assert manifest.parity[fmt]["passed"], (fmt, manifest.parity[fmt])
    for fmt in ("fp32", "int8"):
        ops = manifest.artifacts[fmt].op_counts
        assert not [op for op in ops if op.startswith("CUSTOM") or "FLEX" in op.upper()], ops
        assert ops.get("DEPTHWISE_CONV_2D", 0) == count_depthwise_convs(build_model(name, **config)), (fmt, ops)
