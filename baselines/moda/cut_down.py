"""MODA's `paper` configs cut down to tiny sizes (baselines/paper_scale.py): every other key keeps the paper's
value, so a short run exercises the paper's structure (wav2vec 2.0, the t-VAE, the VGG19 losses, the
multi-scale discriminator, bf16) in seconds. The renderer's 64 px with 4 downsamplings ends at 4 px."""

CUT_DOWN = {
    "motion": {
        "network.hidden_size": 32, "network.heads": 2, "network.layers": 1, "network.ffn_size": 32,
        "data.window": 30, "data.stride": 10,
        "training.batch_size": 2,
    },
    "faco": {
        "training.batch_size": 4,
    },
    "renderer": {
        "resolution": 64,
        "generator.ngf": 8, "generator.n_downsample": 4, "generator.max_channels": 64,
        "discriminator.num_D": 2, "discriminator.n_layers": 2, "discriminator.ndf": 8,
        "inference.batch_size": 4,
        "training.batch_size": 2, "training.num_workers": 0,
    },
}
