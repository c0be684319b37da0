"""Cancel cleans up whatever the interrupt derives from.

ComfyUI's ``InterruptProcessingException`` derived from ``Exception`` up to 0.3.x and derives from
``BaseException`` in 0.33, so cleanup written as ``except Exception`` would not run on Cancel there.
Each case raises both kinds from inside the work (as ComfyUI's progress callback does) and checks
that the temporary float32 UNet copy is gone, the conditioner's progress hook is restored, a
group loaded for a node goes back to its offload device, and no partial output file remains.
"""

from __future__ import annotations

import copy
import gc
import weakref

import pytest
import torch

import official_tiny as ot
from mimaface_core.media.outputs import atomic_output
from mimaface_core.sampling import SamplingOptions
from mimaface_core.sampling.animation import animate_latents
from mimaface_core.sampling.conditioning import ClipConditioner, SourceAppearance


class InterruptLikeComfy0364(Exception):
    """As ComfyUI 0.3.64's InterruptProcessingException."""


class InterruptLikeComfy033(BaseException):
    """As ComfyUI 0.33's InterruptProcessingException."""


KINDS = [InterruptLikeComfy0364, InterruptLikeComfy033]


def _conditioner(mim, frames: int) -> ClipConditioner:
    torch.manual_seed(3)
    tokens, identity = ot.inp("mim", "clip_tokens")[:1], ot.inp("mim", "identity")[:1]
    return ClipConditioner(mim, SourceAppearance(tokens, identity), torch.randn(frames, 261) * 0.3,
                           lambda index: torch.zeros(len(index), 4, 16, 16))


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__mro__[1].__name__)
def test_cancel_inside_the_float32_fallback_drops_the_copy(video_model, kind):
    unet = copy.deepcopy(video_model.denoiser).to(torch.bfloat16)
    unet.register_forward_hook(lambda mod, inp, out: (torch.full_like(out[0], float("nan")),) + tuple(out[1:])
                               if next(mod.parameters()).dtype == torch.bfloat16 else None)
    copies = []

    def fp32():
        made = copy.deepcopy(unet).float()
        copies.append(weakref.ref(made))
        return made

    cond = _conditioner(video_model.mim, 3)
    tick_before = cond.tick
    options = SamplingOptions(steps=2, clip_length=3, overlap=1)
    steps_seen = []

    def on_step(done, total):
        steps_seen.append(done)
        if done == options.steps + 1:  # the first step of the float32 copy
            raise kind("cancel")

    with pytest.raises(kind) as raised:  # kept alive, as a host keeps an exception it reports
        for _ in animate_latents(unet, cond, options, video=True, on_step=on_step, fp32_unet=fp32):
            pass
    gc.collect()
    assert raised.value.__traceback__ is not None
    assert len(copies) == 1, "the fallback copy was made"
    assert copies[0]() is None, "the float32 copy is still referenced after the cancel"
    assert steps_seen[-1] == options.steps + 1, "stopped within one step of the copy"
    assert cond.tick == tick_before, "the conditioner's progress hook was not restored"
    assert next(unet.parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__mro__[1].__name__)
def test_cancel_inside_a_node_puts_the_group_back(video_model, kind, monkeypatch):
    from nodes import _comfy
    from nodes.model_groups import ModelHandle

    freed = []
    monkeypatch.setattr(_comfy, "free_memory", lambda: freed.append(1))
    # standalone: the group goes to `compute` for the node and back to `offload` after it; two
    # distinct CPU device objects make the move observable without a GPU
    handle = ModelHandle(video_model, "mtcnn", torch.device("cpu", 0), torch.device("cpu"))
    moves = []
    group = handle._group("mim")
    original_to = group.to
    monkeypatch.setattr(group, "to", lambda device: moves.append(torch.device(device)) or original_to(device))
    with pytest.raises(kind):
        with handle.use("mim"):
            raise kind("cancel")
    assert moves == [torch.device("cpu", 0), torch.device("cpu")], moves
    assert freed == [1], "the caches were not emptied after the cancelled node"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__mro__[1].__name__)
def test_cancel_while_writing_leaves_no_partial_file(tmp_path, kind):
    target = tmp_path / "out.mp4"
    with pytest.raises(kind):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half a video")
            raise kind("cancel")
    assert not any(tmp_path.iterdir()), list(tmp_path.iterdir())
