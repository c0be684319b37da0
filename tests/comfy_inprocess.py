"""Checks of the pack inside ComfyUI's own process (run by test_comfyui_integration.py).

Run with ComfyUI's python: ``python tests/comfy_inprocess.py COMFYUI_DIR MODELS_DIR INPUT_DIR OUT.json``.
It imports ComfyUI's modules (comfy.model_management, comfy.sd, folder_paths, its core nodes) and
this pack the way ComfyUI loads custom nodes, calls the nodes directly, and writes one JSON record
per check: ``{"name": {"ok": bool, "detail": str}}``. The pytest side asserts them one by one.

Checks: each node loads only its model group into ComfyUI's model list; unloading all models
empties it and the next run loads the groups again from memory; the core VAE wire encodes the
renders (and decodes) like our VAE on the same weights; for a video, an audio and a keyframe job the
nodes' LATENT and frames are bit-identical to the Python API's (issue 23); a core MODEL from ComfyUI's checkpoint and LoRA loaders
merges to exactly the add_difference formula on the LoRA-patched weights; an interrupt during
motion extraction, before the first UNet step and after the first UNet step stops within one
frame or step and the next run works; a forced NaN in fp16 is sampled again in fp32 on a copy and
leaves the model's dtype unchanged; the sampler sends one live preview per step (latent2rgb, TAESD)
and none with the preview method `none`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
import time
import traceback
from pathlib import Path

PACK = Path(__file__).resolve().parents[1]
RESULTS: dict[str, dict] = {}


def check(name):
    """Run the decorated function now and record its outcome under ``name``."""
    def run(fn):
        start = time.perf_counter()
        try:
            detail = fn()
            RESULTS[name] = {"ok": True, "detail": str(detail or "")}
        except Exception as exc:  # recorded, asserted on the pytest side
            RESULTS[name] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-3000:]}"}
        RESULTS[name]["seconds"] = round(time.perf_counter() - start, 1)
        print(name, RESULTS[name]["ok"], RESULTS[name]["seconds"], "s", flush=True)
        return fn
    return run


def load_pack():
    spec = importlib.util.spec_from_file_location("ComfyUI-MIMAFace", PACK / "__init__.py",
                                                  submodule_search_locations=[str(PACK)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["ComfyUI-MIMAFace"] = module
    spec.loader.exec_module(module)
    return module.NODE_CLASS_MAPPINGS


def main(comfy_dir: str, models: str, inputs: str, out: str) -> None:
    sys.path.insert(0, comfy_dir)
    sys.path.append(str(PACK / "tests"))
    import numpy as np
    import torch
    from PIL import Image

    import comfy.cli_args

    if not torch.cuda.is_available():
        comfy.cli_args.args.cpu = True  # as the server is started here: --cpu
    import comfy.model_management as mm
    import folder_paths

    logging.basicConfig(level=logging.INFO)
    models, inputs = Path(models), Path(inputs)
    for kind in ("mimaface", "checkpoints", "vae", "sadtalker", "loras"):
        folder_paths.add_model_folder_path(kind, str(models / kind), is_default=True)
    N = load_pack()

    def image(path):
        return torch.from_numpy(np.asarray(Image.open(path).convert("RGB"))).float()[None] / 255

    def frames(path, n):
        from mimaface_core.media.video_in import iter_video_frames

        return torch.from_numpy(np.stack(list(iter_video_frames(path, limit=n)))).float() / 255

    def ours():
        return {type(m.model).__name__ for m in mm.loaded_models() if type(m.model).__name__.startswith("MIMAFace")}

    load = N["MIMAFaceLoadModel"]()
    args = dict(weights="MIMAFace", mode="video", base_checkpoint="(MIMAFace UNet)", merge="add_difference",
                reference_checkpoint="(none)", strength=1.0, vae="(sd-vae-ft-mse in the weights folder)",
                precision="fp32", detector="mtcnn")
    (handle,) = load.load(**args)
    source = image(inputs / "portrait_eileen_collins.jpg")
    driving = frames(inputs / "driving_talking.mp4", 3)
    steps = dict(seed=0, steps=1, cfg=5.0, scheduler="euler", clip_length=2, overlap=1, noise="same_every_clip")
    state: dict = {}

    @check("extract_loads_only_the_face_group")
    def _():
        mm.unload_all_models()
        state["src"], state["crops"] = N["MIMAFaceExtractMotion"]().extract(handle, source, "first_frame", 0, 9)
        loaded = ours()
        assert loaded == {"MIMAFaceFace"}, loaded
        state["drv"], _ = N["MIMAFaceExtractMotion"]().extract(handle, driving, "first_frame", 0, 9)
        return sorted(loaded)

    @check("each_node_loads_its_group")
    def _():
        render, _, blended = N["MIMAFaceRenderCoeffImage"]().render(handle, state["src"], state["drv"], "absolute", 1.0, 1)
        assert "MIMAFaceBFM" in ours() and "MIMAFaceDenoiser" not in ours(), ours()
        (app,) = N["MIMAFaceMIAAppearanceEncode"]().encode(handle, state["crops"], blended, None, state["src"])
        assert {"MIMAFaceCLIP", "MIMAFaceFace"} <= ours() and "MIMAFaceDenoiser" not in ours(), ours()
        state.update(render=render, app=app)
        (lat,) = N["MIMAFaceICAClipSampler"]().sample(handle, app, render, **steps)
        assert {"MIMAFaceDenoiser", "MIMAFaceMIM", "MIMAFaceVAE"} <= ours(), ours()
        assert lat["samples"].shape[0] == len(driving)
        return sorted(ours())

    @check("unload_all_models_empties_and_reloads_from_memory")
    def _():
        assert ours(), "nothing of ours loaded before"
        mm.unload_all_models()  # what POST /free with unload_models does
        assert not ours(), ours()
        reads = []
        import mimaface_core.weights.safe_load as safe_load

        original = safe_load.read_checkpoint
        safe_load.read_checkpoint = lambda *a, **k: reads.append(a) or original(*a, **k)
        try:
            N["MIMAFaceICAClipSampler"]().sample(handle, state["app"], state["render"], **steps)
        finally:
            safe_load.read_checkpoint = original
        assert {"MIMAFaceDenoiser", "MIMAFaceMIM"} <= ours() and not reads, (ours(), reads)
        return "reloaded without reading a file"

    @check("core_vae_encode_and_decode_equal_ours")
    def _():
        import comfy.sd
        import comfy.utils

        from mimaface_core.networks.vae import encode_renders
        from mimaface_core.weights.vae_file import load_vae

        vae_file = next((models / "vae").iterdir())
        core = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(vae_file)))
        ours_vae = load_vae(vae_file)
        pixels = state["render"][:1, 128:384, 128:384].contiguous()  # the face region; the VAE is convolutional
        a = core.encode(pixels).float() * 0.18215
        b = encode_renders(ours_vae, pixels.permute(0, 3, 1, 2) * 2 - 1).cpu()
        err = float((a - b).abs().max())
        assert err < 1e-4 * float(b.abs().max()), err
        # the sampler's render encoding with the core VAE wire is that same encode
        from importlib import import_module

        sampler = import_module("ComfyUI-MIMAFace.nodes.sampler").ICAClipSampler
        wired = sampler._encode_renders(handle, pixels, core, lambda *a: None)
        err2 = float((wired - a).abs().max())
        assert err2 < 1e-3 * float(a.abs().max()), err2  # one frame at a time vs a batch: round-off
        # VAE Decode: the core VAE against ours on the same latent (the CLI and the API decode with ours)
        from mimaface_core.networks.vae import decode_latents

        core_frames = core.decode(a / 0.18215).float().reshape(-1, *pixels.shape[1:])
        our_frames = decode_latents(ours_vae, a)
        err3 = float((core_frames - our_frames).abs().max())
        assert err3 < 1e-3, err3
        return (f"core vs ours encode max|diff| {err:.2e} (|latent| up to {float(b.abs().max()):.2f}); node path "
                f"{err2:.1e}; decode max|diff| {err3:.1e} ({err3 * 255:.2f} of a uint8 level)")

    @check("model_wire_with_lora_merges_to_the_formula")
    def _():
        return lora_merge_check(models, N)

    @check("interrupt_during_motion_extraction")
    def _():
        import comfy.utils

        seen = []
        original = comfy.utils.ProgressBar.update_absolute

        def spy(bar, value, total=None, preview=None):
            seen.append(value)
            if value == 2:
                mm.interrupt_current_processing(True)
            return original(bar, value, total, preview)

        comfy.utils.ProgressBar.update_absolute = spy
        try:
            N["MIMAFaceExtractMotion"]().extract(handle, driving, "first_frame", 0, 9)
            raise AssertionError("not interrupted")
        except mm.InterruptProcessingException:
            pass
        finally:
            comfy.utils.ProgressBar.update_absolute = original
            mm.interrupt_current_processing(False)
        assert seen == [1, 2], seen  # the frame after the request was never started
        N["MIMAFaceExtractMotion"]().extract(handle, driving, "first_frame", 0, 9)  # the next run works
        kind = mm.InterruptProcessingException.__mro__[1].__name__  # Exception to 0.3.x, BaseException from 0.33
        return f"stopped at frame {seen[-1]} of {len(driving)} ({kind}-derived interrupt)"

    @check("interrupt_before_and_during_the_first_clip")
    def _():
        calls = []
        hook = handle.model.denoiser.register_forward_hook(lambda *a: calls.append(1))
        try:
            def sample_until_interrupted():
                try:
                    N["MIMAFaceICAClipSampler"]().sample(handle, state["app"], state["render"], **steps)
                    raise AssertionError("not interrupted")
                except mm.InterruptProcessingException:
                    pass
                mm.interrupt_current_processing(False)

            mm.interrupt_current_processing(True)  # pressed before the sampler's first UNet step
            sample_until_interrupted()
            assert not calls, calls
            hook.remove()
            hook = handle.model.denoiser.register_forward_hook(
                lambda *a: calls.append(1) or (mm.interrupt_current_processing(True) if len(calls) == 1 else None))
            sample_until_interrupted()
            assert len(calls) == 1, calls  # stopped right after the first UNet step
        finally:
            hook.remove()
            mm.interrupt_current_processing(False)
        (lat,) = N["MIMAFaceICAClipSampler"]().sample(handle, state["app"], state["render"], **steps)
        return f"{len(calls)} UNet call before stopping; next run gave {tuple(lat['samples'].shape)}"

    @check("fp16_nan_falls_back_without_changing_the_model")
    def _():
        (h16,) = load.load(**{**args, "precision": "fp16"})
        h16.model.denoiser.register_forward_hook(  # returns (sample,) with return_dict=False
            lambda mod, inp, out: (torch.full_like(out[0], float("nan")),) + tuple(out[1:])
            if next(mod.parameters()).dtype == torch.float16 else None)
        app = state["app"]
        two = type(app)(app.tokens, app.identity, app.blended[:2])
        (lat,) = N["MIMAFaceICAClipSampler"]().sample(h16, two, state["render"][:2], **steps)
        assert torch.isfinite(lat["samples"]).all()
        dtype = next(h16.model.denoiser.parameters()).dtype
        assert dtype == torch.float16, dtype
        return "fp32 copy sampled the NaN clips; the model stays float16"

    @check("fp16_image_inputs_are_cast_for_each_network")
    def _():
        # ComfyUI 0.33's --fp16-intermediates passes IMAGE batches as float16: each node casts what
        # its networks need, so the result equals the float32 run on the same (fp16-rounded) values
        half_source, half_driving = source.half(), driving[:2].half()
        src16, crops16 = N["MIMAFaceExtractMotion"]().extract(handle, half_source, "first_frame", 0, 9)
        src32, crops32 = N["MIMAFaceExtractMotion"]().extract(handle, half_source.float(), "first_frame", 0, 9)
        assert torch.equal(src16.coeffs, src32.coeffs) and crops16.dtype == torch.float32
        drv, _ = N["MIMAFaceExtractMotion"]().extract(handle, half_driving, "first_frame", 0, 9)
        render, mask, blended = N["MIMAFaceRenderCoeffImage"]().render(handle, src16, drv, "absolute", 1.0, 1)
        (app16,) = N["MIMAFaceMIAAppearanceEncode"]().encode(handle, crops16.half(), blended, None, src16)
        (app32,) = N["MIMAFaceMIAAppearanceEncode"]().encode(handle, crops16.half().float(), blended, None, src16)
        assert torch.equal(app16.tokens, app32.tokens) and app16.tokens.dtype == torch.float32
        (lat16,) = N["MIMAFaceICAClipSampler"]().sample(handle, app16, render.half(), **steps)
        (lat32,) = N["MIMAFaceICAClipSampler"]().sample(handle, app16, render.half().float(), **steps)
        assert torch.equal(lat16["samples"], lat32["samples"]) and lat16["samples"].dtype == torch.float32
        import comfy.sd
        import comfy.utils

        core = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(next((models / "vae").iterdir()))))
        (wired16,) = N["MIMAFaceICAClipSampler"]().sample(handle, app16, render.half(), **steps, vae=core)
        assert torch.isfinite(wired16["samples"]).all() and wired16["samples"].dtype == torch.float32
        generated = torch.rand(len(half_driving), 512, 512, 3)
        pasted16, mask16 = N["MIMAFacePasteBack"]().paste(half_driving, generated.half(), drv, 24)
        pasted32, _ = N["MIMAFacePasteBack"]().paste(half_driving.float(), generated.half().float(), drv, 24)
        assert torch.equal(pasted16, pasted32) and pasted16.dtype == mask16.dtype == torch.float32
        return "float16 IMAGE inputs: motion, MIA, sampler (own and core VAE) and paste-back equal the float32 run"

    for job in ("video", "audio", "keyframes"):
        check(f"nodes_equal_the_api_{job}_job")(
            lambda job=job: nodes_equal_the_api(job, N, handle, source, inputs, steps))
    check("layer_operations_equal_plain_torch_and_load_partially")(
        lambda: layer_operations_check(models, N, handle, state, steps))
    check("sampler_previews_follow_the_preview_method")(lambda: preview_check(models, N, handle, state, steps))
    Path(out).write_text(json.dumps(RESULTS, indent=1))


KEYFRAMES = "0: smile=0, yaw=0\n1 smooth: smile=1, yaw=10\n"


def nodes_equal_the_api(job: str, N, handle, source, inputs: Path, steps: dict) -> str:
    """Issue 23: the nodes run in this ComfyUI process equal the Python API (README) on the same
    inputs, seed and options, for a video, an audio and a keyframe job: the same driving motion,
    an ICA Clip Sampler LATENT bit-identical to the latents the API decodes (renders encoded by the
    model's own VAE, the sampler's vae input left unconnected), and that LATENT decoded frame by
    frame with the same VAE gives the API's frames bit for bit. The API loads its own model from
    the same snapshot folder and runs after the global RNGs are reseeded differently."""
    import random

    import numpy as np
    import torch

    import mimaface_core.pipeline as pipeline
    from mimaface_core import AnimateOptions, SamplingOptions, encode_source, load_mimaface, make_detector
    from mimaface_core.networks.vae import VAE_SCALING_FACTOR, decode_latents

    _comfy = sys.modules["ComfyUI-MIMAFace.nodes._comfy"]
    frames, rate = 2, 25.0
    clip = inputs / "driving_talking.mp4"
    torch.manual_seed(11)
    np.random.seed(11)
    random.seed(11)
    src, crops = N["MIMAFaceExtractMotion"]().extract(handle, source, "first_frame", 0, 9)
    if job == "video":
        from mimaface_core.media.video_in import iter_video_frames

        driving = torch.from_numpy(np.stack(list(iter_video_frames(clip, limit=frames)))).float() / 255
        drv, _ = N["MIMAFaceExtractMotion"]().extract(handle, driving, "first_frame", 0, 9)
    elif job == "audio":
        from mimaface_core.audio import load_audio

        clip = PACK / "example_media" / "driving_talking.mp4"  # the input folder's cut is shorter than 2 frames of sound
        speech = load_audio(clip, max_frames=frames)
        choice = N["MIMAFaceAudioToMotion"].INPUT_TYPES()["required"]["audio_weights"][0][0]
        audio = {"waveform": torch.from_numpy(speech.samples)[None, None], "sample_rate": 16000}
        drv, _, _ = N["MIMAFaceAudioToMotion"]().animate_audio(src, audio, choice, "audio", 0, "random", 5, 1.0, frames)
    else:
        drv, _, _ = N["MIMAFaceExpressionKeyframes"]().animate(handle, src, KEYFRAMES, frames, rate)
    render, _, blended = N["MIMAFaceRenderCoeffImage"]().render(handle, src, drv, "absolute", 1.0, 1)
    (app,) = N["MIMAFaceMIAAppearanceEncode"]().encode(handle, crops, blended, None, src)
    (lat,) = N["MIMAFaceICAClipSampler"]().sample(handle, app, render, **steps)
    latent = lat["samples"]

    torch.manual_seed(12)
    np.random.seed(12)
    random.seed(12)
    model = load_mimaface(_comfy.weight_folder("MIMAFace"), mode="video")
    detector = make_detector("mtcnn", device=model.device)
    face = encode_source((source[0].numpy() * 255).round().astype(np.uint8), detector, model.d3dfr,
                         model.identity_encoder)
    if job == "video":
        motion = lambda: iter_video_frames(clip, limit=frames)  # noqa: E731
    elif job == "audio":
        from mimaface_core.audio import AudioMotionOptions, audio_motion
        from mimaface_core.audio.weights import load_audio_networks

        nets = load_audio_networks(_comfy.audio_weight_path(choice))
        motion = audio_motion(face.motion(detector.name), load_audio(clip, max_frames=frames), nets,
                              AudioMotionOptions("audio", 0, "random", 5))
    else:
        from mimaface_core.morphable.controls import controls_for
        from mimaface_core.motion.keyframes import keyframe_motion, parse_keyframes, still_motion

        motion = keyframe_motion(still_motion(face.motion(detector.name), frames, rate), parse_keyframes(KEYFRAMES),
                                 controls_for(model.bfm), rate)
    if job != "video":
        assert torch.equal(motion.coeffs, drv.coeffs), \
            f"the API's {job} motion differs from the node's by {(motion.coeffs - drv.coeffs).abs().max():.3g}"
    options = AnimateOptions(SamplingOptions(steps["steps"], steps["cfg"], steps["scheduler"], steps["seed"], "same",
                                             steps["clip_length"], steps["overlap"]), box_mode="first_frame")
    decoded, real = [], pipeline.decode_latents
    pipeline.decode_latents = lambda v, x: decoded.append(x) or real(v, x)
    try:
        api = pipeline.animate(model, face, motion, options)
    finally:
        pipeline.decode_latents = real
    api_latent = torch.cat(decoded) / VAE_SCALING_FACTOR
    assert latent.shape == api_latent.shape, (tuple(latent.shape), tuple(api_latent.shape))
    assert torch.equal(latent, api_latent), \
        f"the sampler's LATENT differs from the API's by up to {(latent - api_latent).abs().max():.3g}"
    ours = torch.cat([decode_latents(model.vae, latent[i:i + 1] * VAE_SCALING_FACTOR) for i in range(len(latent))])
    assert torch.equal(ours, api), f"frames differ by up to {(ours - api).abs().max():.3g}"
    assert len(latent) == frames, len(latent)
    return f"{job}: {len(latent)} frames, LATENT and frames bit-identical to the API"


def lora_merge_check(models: Path, N) -> str:
    """ComfyUI's Load Checkpoint + LoraLoaderModelOnly on a small SD1.5-shaped checkpoint (320
    channels, one level, so ComfyUI detects SD1.5), then our MODEL-wire merge against the formula."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    import nodes as comfy_nodes
    from ldm_layout import unet_to_ldm

    from mimaface_core.weights.base_merge import BaseCheckpoint, add_difference, merge_base_checkpoint, read_sd15_unet

    config = dict(block_out_channels=(320, 320), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                  up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), layers_per_block=1, cross_attention_dim=768,
                  attention_head_dim=8, sample_size=8, in_channels=4, out_channels=4)
    torch.manual_seed(0)
    sd15 = UNet2DConditionModel(**config)
    reference = UNet2DConditionModel(**config)
    mimaface = UNet2DConditionModel(**{**config, "in_channels": 13}).state_dict()
    config = dict(sd15.config)
    ldm = unet_to_ldm(sd15.state_dict(), config["layers_per_block"])
    ck = models / "checkpoints" / "inprocess_sd15.safetensors"
    save_file({k: v.contiguous() for k, v in ldm.items()}, str(ck))
    # a LoRA on one cross-attention projection, in kohya naming
    target = "input_blocks.1.1.transformer_blocks.0.attn2.to_k"
    rank, alpha = 4, 2.0
    up, down = torch.randn(320, rank) * 0.1, torch.randn(rank, 768) * 0.1
    (models / "loras").mkdir(exist_ok=True)
    name = "lora_unet_" + target.replace(".", "_")
    save_file({f"{name}.lora_up.weight": up, f"{name}.lora_down.weight": down, f"{name}.alpha": torch.tensor(alpha)},
              str(models / "loras" / "inprocess_lora.safetensors"))
    (model, _, _) = comfy_nodes.CheckpointLoaderSimple().load_checkpoint("inprocess_sd15.safetensors")
    (patched,) = comfy_nodes.LoraLoaderModelOnly().load_lora_model_only(model, "inprocess_lora.safetensors", 0.75)
    from importlib import import_module

    _comfy = import_module("ComfyUI-MIMAFace.nodes._comfy")
    import comfy.model_management as mm
    import comfy.model_patcher

    base = read_sd15_unet(ldm, config, "checkpoint")
    key = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"
    base[key] = base[key] + 0.75 * (alpha / rank) * (up @ down)  # the LoRA formula, by hand
    ref_state = unet_to_ldm(reference.state_dict(), config["layers_per_block"])
    expected = add_difference(mimaface, base, read_sd15_unet(ref_state, config, "reference"), 1.0)

    def weights(m):
        return {k: v.detach().clone() for k, v in m.model.diffusion_model.state_dict().items()}

    class AssertingDynamic(comfy.model_patcher.ModelPatcher):
        """ModelPatcherDynamic's refusals from ComfyUI 0.33's source (that class reroutes to a plain
        ModelPatcher on a CPU load device): no force_patch_weights, no full load."""

        def is_dynamic(self):
            return True

        def load(self, device_to=None, lowvram_model_memory=0, force_patch_weights=False, full_load=False, **kw):
            assert not force_patch_weights, "force_patch_weights on a dynamic patcher"
            assert not full_load, "full_load on a dynamic patcher"
            return super().load(device_to, lowvram_model_memory, force_patch_weights, full_load, **kw)

        def partially_load(self, device_to, extra_memory=0, force_patch_weights=False):
            assert not force_patch_weights, "force_patch_weights on a dynamic patcher"
            return super().partially_load(device_to, extra_memory, force_patch_weights)

        def patch_model(self, device_to=None, lowvram_model_memory=0, load_weights=True, force_patch_weights=False):
            assert not force_patch_weights, "force_patch_weights on a dynamic patcher"
            return super().patch_model(device_to, lowvram_model_memory, load_weights, force_patch_weights)

    dynamic = patched.clone()
    dynamic.__class__ = AssertingDynamic
    real_dynamic = getattr(comfy.model_patcher, "ModelPatcherDynamic", None)  # 0.33+
    report = []
    for label, wire_model, preload in (("ModelPatcher", patched, False), ("dynamic", dynamic, False),
                                       ("ModelPatcher loaded with its LoRA written in", patched, True)):
        if preload:  # as after a sampler ran with it: ComfyUI patched the weights in place
            mm.load_models_gpu([wire_model])
            assert f"diffusion_model.{target}.weight" in wire_model.backup, "the LoRA was not written in"
        before = weights(wire_model)
        patches_before = {k: len(v) for k, v in wire_model.patches.items()}
        wire = _comfy.patched_unet_state(wire_model, "base_model")
        merged = merge_base_checkpoint(mimaface, {**config, "in_channels": 13},
                                       BaseCheckpoint(wire, "add_difference", ref_state, 1.0))
        rel = max(float((merged[k] - expected[k]).abs().max()) / max(float(expected[k].abs().max()), 1e-12)
                  for k in expected)
        assert rel < 1e-6, (label, rel)
        after = weights(wire_model)
        assert all(torch.equal(before[k], after[k]) for k in before), f"{label}: the wired MODEL's weights changed"
        assert {k: len(v) for k, v in wire_model.patches.items()} == patches_before, f"{label}: patches changed"
        report.append(f"{label}: max rel diff {rel:.1e}")
    mm.unload_all_models()
    err = rel
    unpatched = _comfy.patched_unet_state(model, "base_model")
    assert not torch.equal(unpatched[target + ".weight"], wire[target + ".weight"]), "the LoRA changed nothing"
    try:
        import comfy.supported_models as sm

        bad = type("SDXL", (sm.SDXL,), {})
        model.model.model_config.__class__, old = bad, model.model.model_config.__class__
        try:
            _comfy.patched_unet_state(model, "base_model")
            raise AssertionError("an SDXL MODEL was accepted")
        except ValueError as exc:
            assert "SDXL" in str(exc)
        finally:
            model.model.model_config.__class__ = old
    except ImportError:
        pass
    kind = "ModelPatcherDynamic present (reroutes to ModelPatcher on CPU)" if real_dynamic else "no ModelPatcherDynamic"
    return "; ".join(report) + f"; {kind}; last {err:.1e}"


def preview_check(models: Path, N, handle, state: dict, steps: dict) -> str:
    """Live previews (issue 27): the ICA Clip Sampler's progress-bar updates, captured with
    ComfyUI's global progress hook, carry one preview image per denoising step, a grid of the clip's
    frames at latent resolution (latent2rgb) or ×8 (TAESD, from a taesd_decoder file in
    models/vae_approx with random weights), in the (format, PIL image, max size) form of ComfyUI's
    own samplers; with the preview method ``none`` no update carries one and no denoised estimate
    is even computed."""
    import torch
    from safetensors.torch import save_file

    import comfy.cli_args
    import comfy.taesd.taesd
    import comfy.utils
    import folder_paths
    import mimaface_core.sampling.sampler as core_sampler

    from mimaface_core.sampling import SamplingOptions
    from mimaface_core.sampling.ica import plan_clips
    from mimaface_core.sampling.preview import grid_shape

    run = {**steps, "steps": 3}  # several steps per clip: a preview per step, not per clip
    frames = len(state["render"])
    clips = plan_clips(frames, run["clip_length"], run["overlap"], SamplingOptions().skip_unused_clips)
    expected = len(clips) * run["steps"]
    rows, cols = grid_shape(run["clip_length"])
    approx = models / "vae_approx"
    approx.mkdir(exist_ok=True)
    torch.manual_seed(0)
    save_file({k: v.contiguous() for k, v in comfy.taesd.taesd.TAESD().taesd_decoder.state_dict().items()},
              str(approx / "taesd_decoder.safetensors"))
    folder_paths.add_model_folder_path("vae_approx", str(approx), is_default=True)
    estimates = []
    original_estimate = core_sampler.denoised_estimate

    def counted(*a):
        estimates.append(1)
        return original_estimate(*a)

    def run_with(method):
        updates = []
        comfy.cli_args.args.preview_method = comfy.cli_args.LatentPreviewMethod(method)
        previous_hook = comfy.utils.PROGRESS_BAR_HOOK
        comfy.utils.set_progress_bar_global_hook(lambda value, total, preview, **kw: updates.append(preview))
        estimates.clear()
        core_sampler.denoised_estimate = counted
        try:
            (lat,) = N["MIMAFaceICAClipSampler"]().sample(handle, state["app"], state["render"], **run)
        finally:
            comfy.utils.set_progress_bar_global_hook(previous_hook)
            core_sampler.denoised_estimate = original_estimate
        return lat["samples"].shape[-2:], [u for u in updates if u is not None], len(estimates)

    report = []
    original_method = comfy.cli_args.args.preview_method
    try:
        for method, scale in (("latent2rgb", 1), ("auto", 1), ("taesd", 8)):
            (h, w), previews, computed = run_with(method)
            assert len(previews) == expected == computed, (method, len(previews), expected, computed)
            for fmt, image, max_size in previews:
                assert fmt == "JPEG" and isinstance(max_size, int), (fmt, max_size)
                assert image.size == (cols * w * scale, rows * h * scale), (method, image.size, (h, w))
            report.append(f"{method}: {len(previews)} previews of {previews[0][1].size[0]}x{previews[0][1].size[1]}")
        _, previews, computed = run_with("none")
        assert previews == [] and computed == 0, (len(previews), computed)
        report.append("none: no preview, no estimate computed")
    finally:
        comfy.cli_args.args.preview_method = original_method
    return (f"{frames} frames, {len(clips)} clip(s) of {run['clip_length']}, {run['steps']} steps each; "
            + "; ".join(report))


def layer_operations_check(models: Path, N, handle, state: dict, steps: dict) -> str:
    """Networks built with ComfyUI's casting layers (issue 16, Low VRAM) on the CPU.

    1. ``comfy.ops.manual_cast`` (every layer casts its weights at every call) and the pack's own
       ``disable_weight_init`` build give the sampler's latents, the CLIP tokens and the MIA output
       bit-exactly equal to a plain torch build.
    2. A partial load of the denoiser group by ComfyUI's real ModelPatcher (``patch_model`` with a
       third of its size as ``lowvram_model_memory``; ``load_models_gpu`` always loads fully on a
       CPU) leaves layers casting and gives the full load's noise prediction exactly.
    """
    from importlib import import_module

    import torch

    import comfy.model_patcher
    import comfy.ops
    import official_tiny as ot

    from mimaface_core.networks.denoiser import predict_noise
    from mimaface_core.weights.loader import load_mimaface
    from mimaface_core.networks.operations import move_loose_tensors

    wires = import_module("ComfyUI-MIMAFace.nodes.model_groups")
    cpu = torch.device("cpu")
    folder = models / "mimaface" / "MIMAFace"
    handles = {"plain": wires.ModelHandle(load_mimaface(folder, mode="video"), "mtcnn", cpu, cpu)}
    for label, ops in (("manual_cast", comfy.ops.manual_cast), ("disable_weight_init", comfy.ops.disable_weight_init)):
        handles[label] = wires.ModelHandle(load_mimaface(folder, mode="video", operations=ops), "mtcnn", cpu, cpu,
                                           operations=ops)
    casting = sum(isinstance(m, comfy.ops.CastWeightBiasOp) for m in handles["manual_cast"].model.denoiser.modules())
    assert casting > 0 and handle.operations is comfy.ops.disable_weight_init, (casting, handle.operations)
    outputs = {}
    pixels = ot.inp("clip", "pixel_values")
    coeffs = {n: ot.inp("mim", n) for n in ("gaze", "exp", "tex", "gamma", "angles", "translation")}
    frames = len(coeffs["gaze"])
    mim_in = (ot.inp("mim", "clip_tokens").repeat(frames, 1, 1), ot.inp("mim", "identity").repeat(frames, 1))
    for label, h in handles.items():
        (lat,) = N["MIMAFaceICAClipSampler"]().sample(h, state["app"], state["render"], **steps)
        with torch.no_grad():
            outputs[label] = (lat["samples"], h.model.appearance_encoder(pixels), h.model.mim(*mim_in, **coeffs))
    for label in ("manual_cast", "disable_weight_init"):
        for what, a, b in zip(("sampler", "clip", "mim"), outputs[label], outputs["plain"]):
            assert torch.equal(a, b), f"{label} {what}: max diff {float((a - b).abs().max()):.3e}"
    # 2. partial load by the real ModelPatcher
    h = handles["disable_weight_init"]
    group = h._group("denoiser")
    context = ot.inp("unet3d", "context_cond")
    args = (ot.inp("unet3d", "sample"), ot.inp("unet3d", "timestep"), torch.cat([torch.zeros_like(context), context]))
    with torch.no_grad():
        full = predict_noise(h.model.denoiser, *args)
    patcher = comfy.model_patcher.ModelPatcher(group, load_device=cpu, offload_device=cpu)
    budget = patcher.model_size() // 3
    patcher.patch_model(device_to=cpu, lowvram_model_memory=budget)
    try:
        cast_now = sum(bool(getattr(m, "comfy_cast_weights", False)) for m in group.modules())
        loaded = group.model_loaded_weight_memory
        assert group.model_lowvram and cast_now > 0 and 0 < loaded < patcher.model_size(), (cast_now, loaded)
        move_loose_tensors(group, h.operations, cpu)
        with torch.no_grad():
            partial = predict_noise(h.model.denoiser, *args)
    finally:
        patcher.unpatch_model(cpu)
    assert torch.equal(partial, full), f"partial load: max diff {float((partial - full).abs().max()):.3e}"
    return (f"manual_cast ({casting} casting layers in the denoiser) and disable_weight_init equal plain torch "
            f"bit-exactly (sampler, CLIP, MIA); partial load ({budget / 2**20:.1f} MiB budget of "
            f"{patcher.model_size() / 2**20:.1f}): {loaded / 2**20:.1f} MiB loaded, {cast_now} layers casting, "
            "noise prediction bit-exact")


if __name__ == "__main__":
    main(*sys.argv[1:5])
