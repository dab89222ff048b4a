"""MODA's `paper` configs built on the meta device (no weights, no memory) against the release's shapes and
parameter counts. The release's counts are computed here from its layer lists (taichuai/MODA@69718d7, file:line
at each function), independently of the toolkit's modules; where the toolkit differs structurally, the test
asserts the documented difference (docs/moda-release-differences.md)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from talking_head.baselines.moda import load_config
from talking_head.baselines.moda import moda_net as mn
from talking_head.baselines.moda.faco_net import FaCoNet
from talking_head.baselines.moda.renderer import TemporalRenderer

META = torch.device("meta")


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------- the release's layer lists
def linear(a: int, b: int) -> int:
    return a * b + b


def release_mlp(dim_in: int, dim_out: int, dim_hidden: int, n_layers: int, with_norm: bool = False) -> int:
    """``MLP(dim_in, dim_out, dim_hidden, n_layers, with_norm)`` (models/componments/networks.py:127-151): Linear
    in -> hidden, (n_layers - 2) x hidden -> hidden, hidden -> out; a BatchNorm1d (2 x hidden) after each but
    the last Linear when with_norm."""
    total = linear(dim_in, dim_hidden) + (n_layers - 2) * linear(dim_hidden, dim_hidden) + linear(dim_hidden, dim_out)
    return total + (2 * dim_hidden * (n_layers - 1) if with_norm else 0)


def attention(d: int) -> int:
    return 3 * d * d + 3 * d + linear(d, d)  # nn.MultiheadAttention: packed in-projection + out-projection


def encoder_layer(d: int, ffn: int) -> int:
    return attention(d) + linear(d, ffn) + linear(ffn, d) + 2 * 2 * d  # + two LayerNorms


def decoder_layer(d: int, ffn: int) -> int:
    return 2 * attention(d) + linear(d, ffn) + linear(ffn, d) + 3 * 2 * d  # self + cross attention, three LayerNorms


def release_motion_network(d: int = 128, layers: int = 3) -> int:
    """``MODANet`` without wav2vec2 (models/componments/moda_net.py:18-35) with ``DualTemporalMoudleV2`` of type
    FormerHybrid (networks.py:587-589): ``TemporalAlignedBlock`` (networks.py:484-501, decoder FFN = hidden) and
    ``TemporalVAEBlock`` (networks.py:504-525: encoder, decoder, out, to_mu, to_logvar, decode_latent)."""
    audio_head = release_mlp(768, d, d, 2, with_norm=True)
    subject_head = release_mlp(1434, 128, d, 3, with_norm=True)
    aligned = layers * decoder_layer(d, d)
    tvae = layers * encoder_layer(d, d) + layers * decoder_layer(d, d) + 4 * linear(d, d)
    tails = (release_mlp(2 * d, 40 * 3, 512, 2, True) + release_mlp(2 * d, 60 * 3, 256, 3, True)
             + release_mlp(2 * d, 7, 256, 3, True) + release_mlp(2 * d, 18 * 3, 256, 3, True))
    return audio_head + subject_head + aligned + tvae + tails


def release_faco() -> tuple[int, int]:
    """(generator, discriminator) of ``FaCoNet`` / ``PointDiscriminator`` with subject_head 'point'
    (models/componments/faco_net.py:15-22, 51-59)."""
    generator = (release_mlp(1434, 256, 128, 3) + release_mlp(120, 128, 256, 3) + release_mlp(180, 128, 256, 3)
                 + release_mlp(256, 1434, 512, 4))
    discriminator = release_mlp(1434, 256, 128, 3) + release_mlp(1434 + 300, 256, 256, 2) + release_mlp(256, 1, 128, 3)
    return generator, discriminator


def conv(cin: int, cout: int, k: int, bias: bool) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def residual(c: int) -> int:
    return 2 * conv(c, c, 3, False) + 2 * 2 * c  # ResidualBlock with BatchNorm (networks.py:826-844)


def release_generator(input_nc: int = 19, output_nc: int = 3, num_downs: int = 8, ngf: int = 64) -> int:
    """``RenderGenerator_normal`` (networks.py:625-644) of ``ResUnetSkipConnectionBlock_small`` blocks
    (networks.py:658-720), BatchNorm, so convolutions have no bias."""
    def block(outer: int, inner: int, cin: int | None = None, outermost: bool = False, innermost: bool = False) -> int:
        cin = outer if cin is None else cin
        total = conv(cin, inner, 3, False) + residual(inner)  # downconv + res_downconv
        if not (outermost or innermost):
            total += 2 * inner  # downnorm
        total += conv(inner if innermost else 2 * inner, outer, 3, False)  # upconv
        if not outermost:
            total += 2 * outer + residual(outer)  # upnorm + res_upconv
        return total

    total = block(ngf * 8, ngf * 8, innermost=True) + (num_downs - 5) * block(ngf * 8, ngf * 8)
    total += block(ngf * 4, ngf * 8) + block(ngf * 2, ngf * 4) + block(ngf, ngf * 2)
    return total + block(output_nc, ngf, input_nc, outermost=True)


def release_discriminator(input_nc: int = 22, ndf: int = 64, n_layers: int = 4, num_D: int = 3,
                          batch_norm: bool = True) -> int:
    """``MultiscaleDiscriminator`` (networks.py:951-966: each scale min(64, ndf * 2^k) wide) of
    ``NLayerDiscriminator`` (networks.py:1000-1030: biased 4x4 convolutions, BatchNorm after all but the first
    and last); input 3 mesh + 3 face + 3 example + 13 TPE channels (render_D.py:20-24, render_model.py)."""
    total = 0
    for i in range(num_D):
        nf = min(64, ndf * 2 ** (num_D - 1 - i))
        scale = conv(input_nc, nf, 4, True)
        for _ in range(n_layers):  # n_layers - 1 stride-2 layers, then the stride-1 one
            previous, nf = nf, min(nf * 2, 512)
            scale += conv(previous, nf, 4, True) + (2 * nf if batch_norm else 0)
        total += scale + conv(nf, 1, 4, True)
    return total


# ---------------------------------------------------------------------------- the tests
def _wav2vec2_base(weights, keep_mask_embedding=False):
    """wav2vec2-base-960h's architecture from its config (transformers' defaults are the base model's)."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    model = Wav2Vec2Model(Wav2Vec2Config())
    if not keep_mask_embedding:
        model.masked_spec_embed = None
    return model


@pytest.mark.parametrize("faithful", [False, True])
def test_motion_paper_config_has_the_release_shapes(monkeypatch, faithful) -> None:
    monkeypatch.setattr(mn, "load_wav2vec2", _wav2vec2_base)
    config = load_config("paper", "motion", [f"faithful_to_release={str(faithful).lower()}"])
    with META:
        model = mn.MODANet(config)
    net = model.network
    speech = net.audio.speech
    assert (speech.config.hidden_size, speech.config.num_hidden_layers) == (768, 12)
    assert (speech.masked_spec_embed is not None) == faithful  # kept only for SpecAugment, the release's
    heads = {name: head[-1].out_features for name, head in net.heads.items()}
    assert heads == {"lips": 120, "eyes": 180, "head": 7, "torso": 54}
    for block in (net.aligned.decoder, net.tvae.encoder, net.tvae.decoder):
        assert len(block.layers) == 3
        layer = block.layers[0]
        assert (layer.self_attn.embed_dim, layer.self_attn.num_heads, layer.linear1.out_features) == (128, 4, 128)
        assert layer.dropout.p == (0.1 if faithful else 0.0)
    rest = count(model) - count(speech)
    # the default's posterior also reads the target head (7) and torso (54) motion: one more Linear(61, 128)
    assert rest == release_motion_network() + (0 if faithful else linear(61, 128))
    assert speech.config.mask_time_prob == 0.05 and speech.config.mask_time_length == 10


def test_faco_paper_config_has_the_release_shapes() -> None:
    config = load_config("paper", "faco")
    with META:
        model = FaCoNet(config)
    generator, discriminator = release_faco()
    assert count(model.generator) == generator  # the extra encoder LeakyReLUs carry no parameters
    assert model.generator.decoder[-1].out_features == 1434
    assert (model.generator.lips[0].in_features, model.generator.eyes[0].in_features) == (120, 180)
    # documented difference: the toolkit's discriminator is concat[lips, eyes, full, subject] -> 512 -> 256 -> 1
    ours = linear(1434, 128) + linear(128, 128) + linear(120 + 180 + 1434 + 128, 512) + linear(512, 256) + linear(256, 1)
    assert count(model.discriminator) == ours != discriminator


def test_renderer_paper_config_has_the_release_shapes() -> None:
    config = load_config("paper", "renderer")
    with META:
        model = TemporalRenderer(config)
    assert model.in_channels == 19
    generator = release_generator()
    assert count(model.generator) == generator
    assert 75e6 < generator < 77e6  # ~76 M, as the release's RenderGenerator_normal
    assert model.generator.widths == [64, 128, 256, 512, 512, 512, 512, 512]
    assert len(model.discriminator.nets) == 3 and len(model.discriminator.nets[0].layers) == 4 + 2
    # documented difference: InstanceNorm without affine parameters where the release has BatchNorm
    assert count(model.discriminator) == release_discriminator(batch_norm=False)
    assert release_discriminator() - count(model.discriminator) == 3 * 2 * (128 + 256 + 512 + 512)
    with META:
        out = model.generator(torch.empty(1, 19, 512, 512))
        scores = model.discriminator(torch.empty(1, 22, 512, 512))
    assert out.shape == (1, 3, 512, 512)
    assert [s[-1].shape[-1] for s in scores] == [35, 19, 11]  # the release's patch sizes at 512, 256, 128 px
