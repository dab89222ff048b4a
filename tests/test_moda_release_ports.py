"""`faithful_to_release: true` against literal ports of the MODA release's loss and schedule functions
(taichuai/MODA at commit 69718d7; the file and lines are cited above each port).

Each port below restates one release function line by line (the release's names kept; CUDA placement,
`Variable`, GANLoss's label caching and printing dropped). Each test runs the toolkit's code in release mode
on the same random inputs and asserts the same value: the motion loss (every term and the total), FaCo-Net's
GAN and L1 terms and D weighting, the renderer's L1 / VGG / style / GAN / feature-matching terms and D
weighting, the learning-rate schedules of the motion stage and the renderer, and the renderer's temporal
encoding (TPE) in training and at inference. The networks themselves differ from the release's
(docs/moda-release-differences.md), so the ports are fed the toolkit networks' outputs: what is checked is
the arithmetic that turns predictions into losses and epochs into learning rates.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from talking_head.baselines.face_crop import images_to_model
from talking_head.baselines.moda import load_config
from talking_head.baselines.moda import moda_net as mn
from talking_head.baselines.moda import renderer as rd
from talking_head.baselines.moda.faco_net import FaCoNet
from talking_head.baselines.moda.renderer_networks import VGG19Features
from talking_head.baselines.training import learning_rate

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


# =========================================================================================== ports
# taichuai/MODA@69718d7 models/componments/losses.py:94-106
class MaskedMSELoss(nn.Module):
    def forward(self, x, y, m):
        t = (x - y)**2
        t = t.reshape(t.shape[0], -1) / t.shape[-1]
        t = torch.mean(t, 1)
        div = torch.sum(m)
        if div < 0.5: div = t.shape[0]  # an int: the next line's div.float() then raises AttributeError
        ret = torch.sum(t * m.squeeze().float()) / div.float()
        return ret


# taichuai/MODA@69718d7 models/componments/losses.py:109-123
class MotionLoss(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1_loss = nn.L1Loss()

    def forward(self, seq_1, seq_2):
        seq_1v = seq_1[:, 1:, ...] - seq_1[:, :-1, ...]
        seq_2v = seq_2[:, 1:, ...] - seq_2[:, :-1, ...]
        return self.l1_loss(seq_1v, seq_2v)


# taichuai/MODA@69718d7 models/moda_model.py:79-100 (opt.loss = 'L2+Velocity', configs/train/moda.yaml:9)
def release_motion_loss(pred: dict, target: dict, torsomask: torch.Tensor) -> dict:
    featureL2loss, maskedL2loss, velocityloss = nn.MSELoss(), MaskedMSELoss(), MotionLoss()
    out = {}
    loss = 0
    out["lips"] = featureL2loss(pred["lips"], target["lips"])
    loss = loss + 5 * out["lips"]
    out["eyes"] = featureL2loss(pred["eyes"], target["eyes"])
    out["head"] = featureL2loss(pred["head"], target["head"])
    out["torso"] = maskedL2loss(pred["torso"], target["torso"], torsomask)
    loss = loss + out["eyes"] + out["head"] + out["torso"]
    loss_vel = 0
    out["lips_velocity"] = velocityloss(pred["lips"], target["lips"])
    loss_vel = loss_vel + 5 * out["lips_velocity"]
    out["eyes_velocity"] = velocityloss(pred["eyes"], target["eyes"])
    out["head_velocity"] = velocityloss(pred["head"], target["head"])
    out["torso_velocity"] = velocityloss(pred["torso"], target["torso"])
    loss_vel = loss_vel + out["eyes_velocity"] + out["head_velocity"] + 0.5 * out["torso_velocity"]
    out["total"] = loss + loss_vel
    return out


# taichuai/MODA@69718d7 models/componments/losses.py:10-53 (use_lsgan: gan_mode 'ls' is truthy)
class GANLoss(nn.Module):
    def __init__(self, target_real_label=1.0, target_fake_label=0.0):
        super().__init__()
        self.real_label, self.fake_label = target_real_label, target_fake_label
        self.loss = nn.MSELoss()

    def get_target_tensor(self, input, target_is_real):
        return torch.full_like(input, self.real_label if target_is_real else self.fake_label)

    def __call__(self, input, target_is_real):
        if isinstance(input[0], list):
            loss = 0
            for input_i in input:
                pred = input_i[-1]
                target_tensor = self.get_target_tensor(pred, target_is_real)
                loss += self.loss(pred, target_tensor)
            return loss
        else:
            target_tensor = self.get_target_tensor(input[-1], target_is_real)
            return self.loss(input[-1], target_tensor)


# taichuai/MODA@69718d7 models/faco_model.py:129-163 (backward_D, calculate_loss); lambda_L1 100
# (options/train_feature_options.py:48). D is the toolkit's discriminator, (lips, eyes, mesh, subject) -> (B, T, 1)
# (the release concatenates the first three into real_AB / fake_AB), one D for both losses (the release's G
# step meets the D its D step just updated; the toolkit trains both at once, baselines/gan.py). The autocast()
# of backward_D changes nothing: MSELoss runs in float32 under autocast, and on a CPU it is off.
def release_faco_loss(D, input_lip, input_eye, target, fake_pred, subject_id, lambda_L1=100.0) -> dict:
    criterionGAN, criterionL1 = GANLoss(), nn.L1Loss()
    pred_real = D(input_lip, input_eye, target, subject_id)
    pred_fake = D(input_lip, input_eye, fake_pred.detach(), subject_id)
    loss_D_real = criterionGAN(pred_real, True) * 2
    loss_D_fake = criterionGAN(pred_fake, False)
    loss_D = (loss_D_fake + loss_D_real) * 0.5
    pred_fake = D(input_lip, input_eye, fake_pred, subject_id)
    loss_G_GAN = criterionGAN(pred_fake, True)
    loss_l1 = criterionL1(fake_pred, target) * lambda_L1
    loss_G = loss_G_GAN + loss_l1
    return {"l1": loss_l1, "g_gan": loss_G_GAN, "d_real": loss_D_real, "d_fake": loss_D_fake, "loss_D": loss_D,
            "loss_G": loss_G}


# taichuai/MODA@69718d7 models/componments/losses.py:126-134
def gram_matrix(input):
    a, b, c, d = input.size()
    features = input.view(a * b, c * d)
    G = torch.mm(features, features.t())
    return G.div(a * b * c * d)


# taichuai/MODA@69718d7 models/componments/losses.py:137-144
class StyleLoss(nn.Module):
    def forward(self, x, y):
        Gx = gram_matrix(x)
        Gy = gram_matrix(y)
        return F.mse_loss(Gx, Gy) * 30000000


# taichuai/MODA@69718d7 models/componments/losses.py:260-290 (the slices of torchvision's vgg19().features;
# here over the weights of the toolkit's VGG19Features, so both see the same random network)
class Vgg19(nn.Module):
    def __init__(self, vgg_pretrained_features):
        super().__init__()
        self.slice1, self.slice2, self.slice3, self.slice4, self.slice5 = (nn.Sequential() for _ in range(5))
        for x in range(2):
            self.slice1.add_module(str(x), vgg_pretrained_features[x])
        for x in range(2, 7):
            self.slice2.add_module(str(x), vgg_pretrained_features[x])
        for x in range(7, 12):
            self.slice3.add_module(str(x), vgg_pretrained_features[x])
        for x in range(12, 21):
            self.slice4.add_module(str(x), vgg_pretrained_features[x])
        for x in range(21, 30):
            self.slice5.add_module(str(x), vgg_pretrained_features[x])

    def forward(self, X):
        h_relu1 = self.slice1(X)
        h_relu2 = self.slice2(h_relu1)
        h_relu3 = self.slice3(h_relu2)
        h_relu4 = self.slice4(h_relu3)
        h_relu5 = self.slice5(h_relu4)
        return [h_relu1, h_relu2, h_relu3, h_relu4, h_relu5]


# taichuai/MODA@69718d7 models/componments/losses.py:56-91
class VGGLoss(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.vgg = model
        self.criterion = nn.L1Loss()
        self.style_criterion = StyleLoss()
        self.weights = [1.0, 1.0, 1.0, 1.0, 1.0]
        self.style_weights = [1.0, 1.0, 1.0, 1.0, 1.0]

    def forward(self, x, y, style=False):
        x_vgg, y_vgg = self.vgg(x[:, :3, ...]), self.vgg(y[:, :3, ...])
        loss = 0
        if style:
            style_loss = 0
            for i in range(len(x_vgg)):
                this_loss = (self.weights[i] * self.criterion(x_vgg[i], y_vgg[i].detach()))
                this_style_loss = (self.style_weights[i] * self.style_criterion(x_vgg[i], y_vgg[i].detach()))
                loss += this_loss
                style_loss += this_style_loss
            return loss, style_loss
        for i in range(len(x_vgg)):
            loss += self.weights[i] * self.criterion(x_vgg[i], y_vgg[i].detach())
        return loss


# taichuai/MODA@69718d7 models/render_model.py:213-234 (calculate_loss), 251-295 (backward_D, no mouth D:
# line 37), 297-308 (compute_FeatureMatching_loss); lambda_L1 100, lambda_feat 10
# (options/train_render_options.py:50, 56). Render_D is the toolkit's multi-scale discriminator.
def release_render_loss(Render_D, vgg_features, input_feature_maps, fake_pred, tgt_image, n_layers_D, num_D,
                        lambda_L1=100.0, lambda_feat=10.0) -> dict:
    criterionGAN, criterionL1, criterionVGG = GANLoss(), nn.L1Loss(), VGGLoss(Vgg19(vgg_features))
    real_AB = torch.cat((input_feature_maps, tgt_image), dim=1)
    fake_AB = torch.cat((input_feature_maps, fake_pred), dim=1)
    pred_real = Render_D(real_AB)
    pred_fake = Render_D(fake_AB)
    loss_G_GAN = criterionGAN(pred_fake, True)
    loss_l1 = criterionL1(fake_pred, tgt_image) * lambda_L1
    loss_vgg, loss_style = criterionVGG(fake_pred, tgt_image, style=True)
    loss_vgg = torch.mean(loss_vgg) * lambda_feat
    loss_style = torch.mean(loss_style) * lambda_feat
    loss_FM = torch.zeros(1)
    feat_weights = 4.0 / (n_layers_D + 1)
    D_weights = 1.0 / num_D
    for i in range(min(len(pred_fake), num_D)):
        for j in range(len(pred_fake[i])):
            loss_FM += D_weights * feat_weights * criterionL1(pred_fake[i][j], pred_real[i][j].detach()) * lambda_feat
    loss_G = loss_G_GAN + loss_l1 + loss_vgg + loss_style + loss_FM
    pred_fake_D = Render_D(fake_AB.detach())
    loss_D_real = criterionGAN(pred_real, True)
    loss_D_fake = criterionGAN(pred_fake_D, False)
    lambda_real = 0.666
    loss_D = loss_D_fake * (1 - lambda_real) + loss_D_real * lambda_real
    return {"g_gan": loss_G_GAN, "l1": loss_l1, "vgg": loss_vgg, "style": loss_style, "fm": loss_FM.squeeze(),
            "d_real": loss_D_real, "d_fake": loss_D_fake, "loss_G": loss_G.squeeze(), "loss_D": loss_D}


# taichuai/MODA@69718d7 models/componments/networks.py:84-90 (policy 'linear'), 99-101 (policy 'cosine'),
# built as models/base_model.py:93-94 does and stepped once per epoch as base_model.py:134-140; the epoch loop
# is train.py:49-66 (motion) and train_renderer.py:65-84 (renderer). Returns the lr of each epoch's steps.
def release_epoch_lrs(lr_policy: str, lr: float, n_epochs: int, n_epochs_decay: int = 0, epoch_count: int = 0):
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.Adam([{"params": [param], "initial_lr": lr}], lr=lr)
    if lr_policy == "linear":
        def lambda_rule(epoch):
            lr_l = 1.0 - max(0, epoch - n_epochs) / float(n_epochs_decay + 1)
            return lr_l
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda_rule, last_epoch=epoch_count - 2)
    elif lr_policy == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_epochs, eta_min=0)
    lrs = []
    for epoch in range(n_epochs):
        lrs.append(optimizer.param_groups[0]["lr"])  # the lr every step of this epoch trains with
        optimizer.step()  # (keeps PyTorch from warning that the scheduler stepped first)
        scheduler.step()  # model.update_learning_rate() after the epoch's steps
    return lrs


# taichuai/MODA@69718d7 datasets/render_dataset.py:103-133 (positional_encoding) and 166-169 (training: the
# item index over temporal_encoding_param 1000, options/base_options_render.py:32, added to an image of ones)
def release_training_tpe(ind: int, h: int, w: int, tpos_param: int = 1000) -> torch.Tensor:
    def positional_encoding(tensor, num_encoding_functions=6, include_input=True, log_sampling=True):
        encoding = [tensor] if include_input else []
        frequency_bands = 2.0**torch.linspace(0.0, num_encoding_functions - 1, num_encoding_functions,
                                              dtype=tensor.dtype, device=tensor.device)
        for freq in frequency_bands:
            for func in [torch.sin, torch.cos]:
                encoding.append(func(tensor * freq))
        return torch.cat(encoding, dim=0)

    t = ind / tpos_param
    t_tens = np.ones((h, w), np.float32) + t  # float32: numpy keeps the array's dtype
    return positional_encoding(torch.from_numpy(t_tens[None, ...])).float()  # (_data_aug is the identity: no use_da)


# taichuai/MODA@69718d7 utils/util.py:252-289 (inference; position_encoding_size 1000 from
# configs/renderer/renderer_wtpe.yaml:6, num_encoding_functions 6, include_input True)
def release_inference_tpe(t_index: int, resolution_inp: int, position_encoding_size: int = 1000) -> torch.Tensor:
    def _positional_encoding(tensor, num_encoding_functions=6, include_input=True, log_sampling=True):
        encoding = [tensor] if include_input else []
        frequency_bands = 2.0**torch.linspace(0.0, num_encoding_functions - 1, num_encoding_functions,
                                              dtype=tensor.dtype, device=tensor.device)
        for freq in frequency_bands:
            for func in [torch.sin, torch.cos]:
                encoding.append(func(tensor * freq))
        return torch.cat(encoding, dim=1)

    t = torch.tensor([t_index]).reshape(1, 1, 1, 1) / position_encoding_size
    t_tens = F.interpolate(t, (resolution_inp, resolution_inp))
    return _positional_encoding(t_tens)


# =========================================================================================== stage 1
class _Predictions(nn.Module):
    """Stands in for MODANetwork: returns fixed predictions, so the loss is compared on hand-made inputs."""

    def __init__(self, out: dict):
        super().__init__()
        self.out = out

    def forward(self, *args, **kwargs):
        return {**self.out, "mu": None, "logvar": None}  # release mode never reads mu / logvar (no KL)


@pytest.mark.parametrize("valid", [[1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [1.0]])
def test_motion_loss_in_release_mode_is_the_release_s_term_by_term(valid) -> None:
    """moda_model.py:79-100 with MaskedMSELoss (losses.py:99-106) and MotionLoss (losses.py:114-123): each
    head's MSE, the torso's MSE / 54 over the valid windows (0 when none is), the unmasked velocity L1s,
    and the total 5 lips + eyes + head + torso + 5 lips' + eyes' + head' + 0.5 torso'."""
    paper = load_config("paper", "motion")
    config = load_config("tiny", "motion", ["faithful_to_release=true", "network.hidden_size=16", "network.layers=1",
                                            "data.window=12"])
    config["loss"] = paper["loss"]  # the release's weights (configs/paper), asserted equal to the port's below
    model = mn.MODANet(config)
    g = torch.Generator().manual_seed(0)
    b, t = len(valid), 12
    shapes = {"lips": (40, 3), "eyes": (60, 3), "head": (7,), "torso": (18, 3)}
    target = {k: torch.randn(b, t, *s, generator=g, dtype=torch.float64) for k, s in shapes.items()}
    pred = {k: torch.randn(b, t, math.prod(s), generator=g, dtype=torch.float64) for k, s in shapes.items()}
    model.network = _Predictions(pred)
    batch = {**target, "audio": torch.zeros(b, 1), "torso_valid": torch.tensor(valid, dtype=torch.float64),
             "mesh": torch.randn(b, 478, 3, generator=g, dtype=torch.float64)}
    loss, terms = model.training_loss(batch, torch.Generator().manual_seed(0))

    # The release's targets are (B, T, points * 3), xyz per point (moda_model.py:116-120, dataset :237-239).
    flat = {k: v.reshape(b, t, -1) for k, v in target.items()}
    torsomask = torch.tensor(valid).bool().reshape(b, 1, 1)  # dataset: torso_mask a bool; moda_model.py:121
    port = release_motion_loss(pred, flat, torsomask)
    assert set(terms) == set(port) - {"total"}  # no KL term in release mode
    for name, value in terms.items():
        assert value == pytest.approx(float(port[name]), rel=1e-12, abs=0), name
    torch.testing.assert_close(loss, port["total"], rtol=1e-12, atol=0)


def test_motion_torso_loss_with_no_valid_window_is_zero_where_the_release_raises() -> None:
    """losses.py:104-105: with no valid window the release sets div to the int t.shape[0] and then calls
    div.float(), an AttributeError (a batch without shoulders stops its training); ours gives 0."""
    from talking_head.baselines.moda import release

    g = torch.Generator().manual_seed(3)
    pred, target = torch.randn(2, 12, 54, generator=g), torch.randn(2, 12, 54, generator=g)
    with pytest.raises(AttributeError, match="'int' object has no attribute 'float'"):
        MaskedMSELoss()(pred, target, torch.zeros(2, 1, 1, dtype=torch.bool))
    assert float(release.masked_mse(pred, target, torch.zeros(2), True)) == 0.0


# =========================================================================================== stage 2
def test_faco_loss_in_release_mode_is_the_release_s() -> None:
    """faco_model.py:129-163 with GANLoss (losses.py:43-53): LSGAN on input[-1] only (the batch's last window),
    L1 x 100, D = 0.5 (fake + 2 real); ours sums G's and D's losses in one backward (baselines.gan)."""
    config = load_config("paper", "faco", ["faithful_to_release=true"])
    torch.manual_seed(0)
    model = FaCoNet(config).double()
    g = torch.Generator().manual_seed(1)
    b, t = 3, 5
    batch = {"lips": torch.randn(b, t, 40, 3, generator=g, dtype=torch.float64),
             "eyes": torch.randn(b, t, 60, 3, generator=g, dtype=torch.float64),
             "full": torch.randn(b, t, 478, 3, generator=g, dtype=torch.float64),
             "mesh": torch.randn(b, 478, 3, generator=g, dtype=torch.float64) * 50 + 256}
    seen = []
    model.generator.register_forward_hook(lambda m, args, out: seen.append(out))
    loss, terms = model.training_loss(batch)

    lips, eyes, full = (batch[k].flatten(-2) for k in ("lips", "eyes", "full"))
    subject = model.subject_code(batch["mesh"])[:, None].expand(-1, t, -1)
    with torch.no_grad():
        port = release_faco_loss(model.discriminator, lips, eyes, full, seen[0], subject)
    # ours logs the terms unweighted and applies loss.l1 (100), .gan (1), .d_real (2) in the total; the
    # release's loss_l1 and loss_D_real carry their weights
    w = config["loss"]
    weighted = {"l1": terms["l1"] * w["l1"], "g_gan": terms["g_gan"] * w["gan"],
                "d_real": terms["d_real"] * w["d_real"], "d_fake": terms["d_fake"]}
    for name, value in weighted.items():
        assert value == pytest.approx(float(port[name]), rel=1e-12, abs=0), name
    torch.testing.assert_close(loss.detach(), port["loss_G"] + port["loss_D"], rtol=1e-12, atol=0)
    # input[-1] is the last window: scoring every window gives another value on these inputs
    with torch.no_grad():
        every = GANLoss()([model.discriminator(lips, eyes, full, subject)], True)
    assert float(every) != pytest.approx(terms["d_real"], rel=1e-3)


# =========================================================================================== stage 3
def test_renderer_loss_in_release_mode_is_the_release_s() -> None:
    """render_model.py:213-308 with VGGLoss / StyleLoss / gram_matrix / Vgg19 (losses.py:56-144, 260-290): the
    batch Gram x 3e7, raw [-1, 1] VGG input, five unit layer weights, lambda_feat 10 on VGG, style and FM,
    L1 x 100, and D = 0.666 real + 0.334 fake. A random VGG19 stands in for the pretrained one."""
    paper = load_config("paper", "renderer")
    config = load_config("tiny", "renderer", ["faithful_to_release=true"])
    config["loss"] = paper["loss"]  # the release's weights: vgg, style and fm 10 (lambda_feat), l1 100, no mouth
    torch.manual_seed(0)
    model = rd.TemporalRenderer(config, VGG19Features()).train()
    assert model.fixes["gram"] == "batch" and model.fixes["vgg_input"] == "raw"
    g = torch.Generator().manual_seed(2)
    b, r = 2, config["resolution"]

    def image():
        return torch.randint(0, 256, (b, r, r, 3), generator=g, dtype=torch.uint8)

    batch = {"frame": image(), "condition": image(), "reference": image(), "frame_index": torch.tensor([3, 417]),
             "mouth": torch.zeros(b, r, r, dtype=torch.uint8)}
    seen = []
    model.generator.register_forward_hook(lambda m, args, out: seen.append((args[0], out)))
    loss, terms = model.training_loss(batch)

    x, fake = seen[0]
    d = config["discriminator"]
    with torch.no_grad():
        real = images_to_model(batch["frame"], r).contiguous()  # collated tensors are contiguous: .view works
        port = release_render_loss(model.discriminator, model.vgg.features, x, fake, real, int(d["n_layers"]),
                                   int(d["num_D"]))
    assert terms["style"] > 0 and terms["vgg"] > 0 and terms["fm"] > 0  # every term is live on these inputs
    for name in ("g_gan", "l1", "vgg", "style", "fm", "d_real", "d_fake"):
        assert terms[name] == pytest.approx(float(port[name]), rel=1e-5, abs=0), name
    assert terms["mouth_l1"] == 0.0  # the toolkit's extra term is off, as in the release
    torch.testing.assert_close(loss.detach(), port["loss_G"] + port["loss_D"], rtol=1e-5, atol=0)


# =========================================================================================== schedules
def test_renderer_schedule_is_the_release_s_linear_policy_at_every_epoch() -> None:
    """networks.py:84-90 'linear' (lambda_rule, last_epoch = epoch_count - 2) in train_renderer.py's 40-epoch
    loop: n_epochs 40 (configs/train/renderer/Cathy.yaml:5), n_epochs_decay 10, epoch_count 0, lr 1e-4
    (options/train_render_options.py:27-31, 39). The decay would start after epoch 40, but the loop ends there:
    the lr is constant, which is configs/paper's decay_steps: 0."""
    cfg = load_config("paper", "renderer", ["faithful_to_release=true"])["training"]
    epochs, steps_per_epoch = 40, 943  # configs/paper/renderer.yaml: 37,720 steps = 40 epochs of 943
    assert int(cfg["steps"]) == epochs * steps_per_epoch
    release = release_epoch_lrs("linear", 1e-4, n_epochs=epochs, n_epochs_decay=10, epoch_count=0)
    ours = [[learning_rate(s, cfg) for s in range(e * steps_per_epoch, (e + 1) * steps_per_epoch)]
            for e in range(epochs)]
    for epoch, lr in enumerate(release):
        assert ours[epoch] == [lr] * steps_per_epoch, epoch


@pytest.mark.parametrize("epochs, steps_per_epoch", [(40, 25), (5000, 1)])
def test_motion_cosine_over_steps_meets_the_release_s_per_epoch_cosine_at_every_epoch_boundary(
        epochs, steps_per_epoch) -> None:
    """networks.py:99-101 'cosine': CosineAnnealingLR(T_max = n_epochs, eta_min 0) stepped after each epoch
    (train.py:49-66; configs/train/moda.yaml n_epochs 5000). With decay_steps = epochs x steps_per_epoch, ours,
    lr(s) = lr0 (1 + cos(pi s / decay_steps)) / 2, equals it at the first step of every epoch. Within an epoch
    the release holds its lr while ours keeps decaying: at step k of epoch e ours is lower by
    lr0 (cos(pi e / E) - cos(pi (e + k/S) / E)) / 2, at most about lr0 pi / (2E) (S steps an epoch)."""
    overrides = ["faithful_to_release=true", f"training.steps={epochs * steps_per_epoch}",
                 f"training.decay_steps={epochs * steps_per_epoch}"]
    cfg = load_config("paper", "motion", overrides)["training"]
    lr0 = float(cfg["lr"])
    assert int(cfg["warmup_steps"]) == 0 and float(cfg["min_lr"]) == 0.0  # the release has neither
    release = release_epoch_lrs("cosine", lr0, n_epochs=epochs)
    boundaries = [learning_rate(e * steps_per_epoch, cfg) for e in range(epochs)]
    # PyTorch's recursive CosineAnnealingLR drifts from the closed form by rounding only
    torch.testing.assert_close(torch.tensor(boundaries, dtype=torch.float64),
                               torch.tensor(release, dtype=torch.float64), rtol=1e-9, atol=1e-15)

    steps = np.arange(epochs * steps_per_epoch)
    ours = np.array([learning_rate(int(s), cfg) for s in steps])
    held = np.repeat(release, steps_per_epoch)
    e, k = steps // steps_per_epoch, steps % steps_per_epoch
    predicted = lr0 * (np.cos(np.pi * e / epochs) - np.cos(np.pi * (e + k / steps_per_epoch) / epochs)) / 2
    np.testing.assert_allclose(held - ours, predicted, rtol=0, atol=1e-12 * lr0)
    if steps_per_epoch > 1:  # the largest gap: the formula's, not zero
        assert (held - ours).max() == pytest.approx(predicted.max(), rel=1e-6)
        assert 0 < predicted.max() <= lr0 * math.pi / (2 * epochs)
    else:  # one step an epoch: the two schedules are the same
        assert np.abs(held - ours).max() <= 1e-12 * lr0


# =========================================================================================== TPE
def test_tpe_the_generator_sees_is_the_release_s_in_training_and_at_inference() -> None:
    """Training encodes 1 + idx/1000 (render_dataset.py:166-169), inference idx/1000 (util.py:285-289); in
    release mode ours feeds the generator those 13 channels. The release computes x in float32 and ours in
    float64 (then rounds), so the two agree to float32 rounding of x amplified by the top band 2^5."""
    config = load_config("tiny", "renderer", ["faithful_to_release=true"])
    torch.manual_seed(0)
    model = rd.TemporalRenderer(config)
    r = int(config["resolution"])
    indices = [0, 3, 417, 999, 4321]
    seen = []
    model.generator.register_forward_hook(lambda m, args, out: seen.append(args[0][:, 6:].detach()))
    tolerance = dict(rtol=0, atol=2**5 * 6 * float(np.finfo(np.float32).eps))  # |x| < 6, top band 2^5

    zeros = torch.zeros(len(indices), r, r, 3, dtype=torch.uint8)
    model.training_loss({"frame": zeros, "condition": zeros, "reference": zeros, "mouth": zeros[..., 0],
                         "frame_index": torch.tensor(indices)})
    training = torch.stack([release_training_tpe(i, r, r) for i in indices])
    torch.testing.assert_close(seen.pop(), training, **tolerance)

    rng = np.random.default_rng(0)
    landmarks = np.concatenate([rng.uniform(20, 44, (len(indices), 478, 2)), np.zeros((len(indices), 478, 1))], -1)
    model.render(np.zeros((64, 64, 3), np.uint8), landmarks, None, indices)
    inference = torch.cat([release_inference_tpe(i, r) for i in indices])
    torch.testing.assert_close(seen.pop(), inference, **tolerance)
    assert not torch.allclose(inference, training, atol=0.1)  # the offsets differ, as the release's do
