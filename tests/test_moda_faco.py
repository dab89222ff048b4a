"""MODA stage 2 (baselines/moda/faco_net.py): FaCo-Net composes the full mesh from lips and eyes.

Acceptance: trained with the shipped `tiny` config (at most 3 CPU minutes), the full mesh composed
from the ground-truth lips and eyes of the held-out clips is closer to the ground truth than the
mean-mesh baseline, on all points and on the points it has to infer (neither lips nor eyes).
"""

from __future__ import annotations


import numpy as np
import pytest
import torch

from talking_head.baselines.moda import load_config
from talking_head.baselines.moda.data import load_clips, point_sets, subjects
from talking_head.baselines.moda.faco_net import FaCoNet, build_dataset


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def trained(tiny_runs) -> FaCoNet:
    """The tiny config exactly as shipped, trained on the sample's train split (tests/conftest.py)."""
    run = tiny_runs.stage("moda", "faco")[0]  # its CPU budget: tests/test_training_budget.py
    header = (run / "loss.csv").read_text().splitlines()[0].split(",")
    assert {"l1", "g_gan", "d_fake", "d_real"} <= set(header)
    return FaCoNet.from_pretrained(run)


def test_acceptance_beats_the_mean_mesh(trained, preprocessed_sample) -> None:
    sets = point_sets()
    means = subjects(load_clips(preprocessed_sample, "train", torso=False))
    inferred = sorted(set(range(478)) - set(sets["lips"]) - set(sets["eyes"]))
    for clip in load_clips(preprocessed_sample, "test", torso=False):
        mean = means[clip.speaker].mesh
        lips, eyes = clip.canonical[:, sets["lips"]], clip.canonical[:, sets["eyes"]]
        mesh = trained.compose(lips, eyes, mean)
        np.testing.assert_array_equal(mesh[:, sets["lips"]], lips)  # the given points are kept
        ours = np.linalg.norm(mesh - clip.canonical, axis=-1)
        base = np.linalg.norm(mean - clip.canonical, axis=-1)
        print(f"{clip.clip_id}: full-mesh error {ours.mean():.3f} vs mean mesh {base.mean():.3f} px; inferred "
              f"points {ours[:, inferred].mean():.3f} vs {base[:, inferred].mean():.3f}")
        assert ours.mean() < base.mean()
        assert ours[:, inferred].mean() < base[:, inferred].mean()


def test_generator_and_discriminator_get_only_their_own_gradients(preprocessed_sample) -> None:
    """The summed loss (baselines/gan.py): G's gradient is that of G's loss alone, D's that of D's loss alone."""
    config = load_config("tiny", "faco")
    torch.manual_seed(0)
    model = FaCoNet(config)
    batch = torch.utils.data.default_collate([build_dataset(config, preprocessed_sample)[i] for i in range(8)])
    loss, _ = model.training_loss(batch)
    loss.backward()
    combined = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    lips, eyes, full = batch["lips"].flatten(1), batch["eyes"].flatten(1), batch["full"].flatten(1)
    subject = model.subject_code(batch["mesh"])
    fake = model.generator(lips, eyes, subject)
    g_loss = ((model.discriminator(lips, eyes, fake, subject) - 1) ** 2).mean() + 100 * (fake - full).abs().mean()
    g_grads = torch.autograd.grad(g_loss, list(model.generator.parameters()))
    for (name, _), grad in zip(model.generator.named_parameters(), g_grads):
        torch.testing.assert_close(combined[f"generator.{name}"], grad)
    d_loss = 0.5 * ((model.discriminator(lips, eyes, fake.detach(), subject) ** 2).mean()
                    + 2 * ((model.discriminator(lips, eyes, full, subject) - 1) ** 2).mean())
    d_grads = torch.autograd.grad(d_loss, list(model.discriminator.parameters()))
    for (name, _), grad in zip(model.discriminator.named_parameters(), d_grads):
        torch.testing.assert_close(combined[f"discriminator.{name}"], grad)


def test_frames_read_on_demand_equal_the_arrays_in_memory(preprocessed_sample) -> None:
    """The training set reads each frame's mesh from the dataset's memory map; its items equal what building
    every array in memory gives (the previous reader, written out here), item for item and bit for bit."""
    from talking_head.baselines.moda.data import speaker_means

    config = load_config("tiny", "faco")
    scale = float(config["targets"]["mesh_scale"])
    clips = load_clips(preprocessed_sample, "train", torso=False)
    means = subjects(clips)
    full = np.concatenate([(c.canonical[c.good] - means[c.speaker].mesh) / scale for c in clips]).astype(np.float32)
    mesh = np.concatenate([np.repeat(means[c.speaker].mesh[None], int(c.good.sum()), 0) for c in clips])

    dataset = build_dataset(config, preprocessed_sample)
    assert len(dataset) == len(full) >= 400  # the train split: 4 clips of 125 frames, nearly all with a face
    sets = point_sets()
    for i in range(len(dataset)):
        item = dataset[i]
        assert torch.equal(item["full"], torch.from_numpy(full[i])) and torch.equal(item["mesh"], torch.from_numpy(mesh[i]))
        assert torch.equal(item["lips"], torch.from_numpy(full[i][list(sets["lips"])]))
        assert torch.equal(item["eyes"], torch.from_numpy(full[i][list(sets["eyes"])]))
    for torso in (False, True):  # the streamed means are subjects() of the loaded clips, exactly
        streamed = speaker_means(preprocessed_sample, "train", torso=torso)
        loaded = subjects(load_clips(preprocessed_sample, "train", torso=torso))
        assert sorted(streamed) == sorted(loaded) == ["S01", "S02"]
        for name in loaded:
            for field in ("mesh", "pose", "torso"):
                np.testing.assert_array_equal(getattr(streamed[name], field), getattr(loaded[name], field))

    # DataLoader workers each open the memory map themselves and give the same batches.
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, num_workers=2)
    first = next(iter(loader))
    assert torch.equal(first["full"], torch.from_numpy(full[:64]))
