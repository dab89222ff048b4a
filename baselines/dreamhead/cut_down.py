"""DreamHead's `paper` configs cut down to tiny sizes (baselines/paper_scale.py): every other key keeps the paper's
value, so a short run exercises the paper's structure (the SD VAE path, attention levels, bf16, the sampler) in
seconds. Resolution 64 keeps the VAE's 8x latents at 8 x 8 for the UNet's four levels."""

CUT_DOWN = {
    "a2l": {
        "network.hidden_size": 32, "network.layers": 1, "network.heads": 2, "network.audio_step_width": 16,
        "data.window": 12, "data.stride": 6,
        "sampling.steps": 2, "sampling.overlap": 4, "sampling.crossfade": 2,  # overlap < window
        "training.batch_size": 2, "training.num_workers": 0,
    },
    "l2i": {
        "resolution": 64,
        "unet.block_out_channels": [16, 16, 32, 32], "unet.layers_per_block": 1, "unet.attention_head_dim": 16,
        "unet.norm_num_groups": 8,
        "reference.tau": [1, 4], "data.window": 5,  # tau < window
        "sampler.num_inference_steps": 2, "sampler.batch_size": 4,
        "training.batch_size": 1, "training.num_workers": 0,
    },
}
