"""The identity contrastive loss (paper §3, Fig. 4) and its photometric augmentation: the loss
against an independent per-anchor computation and on tokens made here, the memory bank's ring
buffer and resume, the augmentations, and a short training of a tiny CLIP on two real faces of the
alignment fixture in which the loss falls."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from transformers import CLIPVisionConfig, CLIPVisionModel

from alignment_fixture import entries, media_path
from mimaface_core.networks.appearance_encoder import CLIP_MEAN, CLIP_STD
from mimaface_core.training.augment import AUGMENTATIONS, DEFAULT_PROBABILITIES, photometric_augment
from mimaface_core.training.identity_loss import (
    DEFAULT_BANK_SIZE,
    DEFAULT_TEMPERATURE,
    IDTokenBank,
    IdentityContrastiveLoss,
    clip_id_tokens,
    identity_contrastive_loss,
)

SIZE = 64


def _photos(count: int = 2) -> torch.Tensor:
    """(count, 3, 64, 64) float32 in [0, 1]: the first photos of the alignment fixture."""
    photos = [media_path(e) for e in entries("photo")][:count]
    assert len(photos) == count, f"the alignment fixture needs {count} photos"
    out = []
    for path in photos:
        rgb = Image.open(path).convert("RGB").resize((SIZE, SIZE), Image.BICUBIC)
        out.append(torch.from_numpy(np.asarray(rgb).copy()).permute(2, 0, 1).float() / 255)
    return torch.stack(out)


def _reference_loss(tokens, labels, bank_tokens, bank_labels, temperature) -> float:
    """SupCon L_out computed anchor by anchor with plain Python floats (no shared code)."""
    z = [t / t.norm() for t in tokens.double()]
    cands = [(z[j], int(labels[j]), j) for j in range(len(z))]
    cands += [(b / b.norm(), int(lab), -1) for b, lab in zip(bank_tokens.double(), bank_labels)]
    losses = []
    for i, zi in enumerate(z):
        others = [(c, lab) for c, lab, j in cands if j != i]
        denom = sum(math.exp(float(zi @ c) / temperature) for c, _ in others)
        pos = [c for c, lab in others if lab == int(labels[i])]
        if pos:
            losses.append(-sum(math.log(math.exp(float(zi @ c) / temperature) / denom) for c in pos) / len(pos))
    return sum(losses) / len(losses)


# --------------------------------------------------------------------------------------------------
# loss


def test_defaults():
    assert DEFAULT_TEMPERATURE == 0.07 and DEFAULT_BANK_SIZE == 4096


def test_loss_matches_per_anchor_formula_with_and_without_bank():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randn(6, 8, generator=g)
    labels = torch.tensor([0, 0, 1, 1, 2, 3])  # anchors 4 and 5 have no positive in the batch
    bank = IDTokenBank(size=5, dim=8)
    bank.push(torch.randn(5, 8, generator=g), torch.tensor([2, 1, 7, 0, 2]))
    for tau in (0.07, 0.5):
        got = identity_contrastive_loss(tokens, labels, temperature=tau)
        assert got.dtype == torch.float32
        assert got.item() == pytest.approx(_reference_loss(tokens, labels, torch.zeros(0, 8), [], tau), rel=1e-5)
        got_bank = identity_contrastive_loss(tokens, labels, bank=bank, temperature=tau)
        ref_bank = _reference_loss(tokens, labels, bank.tokens(), bank.labels().tolist(), tau)
        assert got_bank.item() == pytest.approx(ref_bank, rel=1e-5)


def test_same_identity_equal_tokens_give_lower_loss_than_random_tokens():
    g = torch.Generator().manual_seed(1)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    centres = torch.randn(3, 32, generator=g)
    clustered = centres[labels]  # equal tokens within an identity
    unrelated = torch.randn(6, 32, generator=g)
    low = identity_contrastive_loss(clustered, labels)
    high = identity_contrastive_loss(unrelated, labels)
    assert low.item() < high.item() - 1.0
    # identical positives: the loss is bounded below by log(1 + negatives' share) ≥ 0
    assert low.item() >= 0.0


def test_bank_with_positives_changes_loss_and_stays_finite():
    g = torch.Generator().manual_seed(2)
    tokens = torch.randn(4, 16, generator=g)
    labels = torch.tensor([0, 0, 1, 1])
    bank = IDTokenBank(size=8, dim=16)
    bank.push(tokens[[0, 2]] + 0.1 * torch.randn(2, 16, generator=g), torch.tensor([0, 1]))
    without = identity_contrastive_loss(tokens, labels)
    with_bank = identity_contrastive_loss(tokens, labels, bank=bank)
    assert torch.isfinite(with_bank) and torch.isfinite(without)
    assert abs(with_bank.item() - without.item()) > 1e-3
    # the bank supplies the only positives of otherwise unpaired anchors
    alone = identity_contrastive_loss(tokens[[0, 2]], torch.tensor([0, 1]))
    assert alone.item() == 0.0
    assert identity_contrastive_loss(tokens[[0, 2]], torch.tensor([0, 1]), bank=bank).item() > 0.0


def test_gradient_reaches_tokens_and_not_the_bank():
    g = torch.Generator().manual_seed(3)
    tokens = torch.randn(4, 16, generator=g, requires_grad=True)
    bank = IDTokenBank(size=4, dim=16)
    bank.push(torch.randn(4, 16, generator=g), torch.tensor([0, 1, 0, 1]))
    loss = identity_contrastive_loss(tokens, torch.tensor([0, 0, 1, 1]), bank=bank)
    loss.backward()
    assert tokens.grad is not None and torch.isfinite(tokens.grad).all()
    assert tokens.grad.abs().sum() > 0
    assert not bank.token_buffer.requires_grad


def test_no_positive_gives_zero_in_the_graph():
    tokens = torch.randn(3, 8, requires_grad=True)
    loss = identity_contrastive_loss(tokens, torch.tensor([0, 1, 2]))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(tokens.grad, torch.zeros_like(tokens))


def test_loss_value_errors():
    t = torch.randn(4, 8)
    lab = torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match="tokens"):
        identity_contrastive_loss(torch.randn(4), lab)
    with pytest.raises(ValueError, match="tokens"):
        identity_contrastive_loss(torch.randn(2, 4, 8), lab)
    with pytest.raises(ValueError, match="labels"):
        identity_contrastive_loss(t, torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match="labels"):
        identity_contrastive_loss(t, lab[None])
    with pytest.raises(ValueError, match="labels"):
        identity_contrastive_loss(t, lab.float())
    with pytest.raises(ValueError, match="bank"):
        identity_contrastive_loss(t, lab, bank=IDTokenBank(size=4, dim=9))
    for tau in (0.0, -0.1):
        with pytest.raises(ValueError, match="temperature"):
            identity_contrastive_loss(t, lab, temperature=tau)
    with pytest.raises(ValueError, match="last_hidden_state"):
        clip_id_tokens(torch.randn(2, 8))
    with pytest.raises(ValueError, match="augmented_tokens"):
        IdentityContrastiveLoss(dim=8, bank_size=4)(t, torch.randn(3, 8), lab)
    with pytest.raises(ValueError, match="temperature"):
        IdentityContrastiveLoss(dim=8, temperature=0)


def test_clip_id_tokens_is_the_class_token():
    hidden = torch.randn(2, 17, 32)
    assert torch.equal(clip_id_tokens(hidden), hidden[:, 0])


# --------------------------------------------------------------------------------------------------
# bank


def _unit_rows(n: int, dim: int, offset: int = 0) -> torch.Tensor:
    """Row k = the basis vector e_(offset+k) (already unit length), so stored rows are recognisable."""
    return torch.eye(dim)[offset:offset + n]


def test_bank_wraps_and_keeps_order():
    bank = IDTokenBank(size=5, dim=16)
    assert len(bank) == 0 and bank.tokens().shape == (0, 16)
    bank.push(_unit_rows(3, 16, 0), torch.tensor([0, 1, 2]))
    assert len(bank) == 3 and bank.labels().tolist() == [0, 1, 2]
    bank.push(_unit_rows(4, 16, 3), torch.tensor([3, 4, 5, 6]))
    assert len(bank) == 5
    assert bank.labels().tolist() == [2, 3, 4, 5, 6]  # 0 and 1 (the oldest) are gone
    assert torch.equal(bank.tokens(), _unit_rows(5, 16, 2))
    bank.push(_unit_rows(7, 16, 7), torch.arange(7, 14))  # more than the size at once
    assert bank.labels().tolist() == [9, 10, 11, 12, 13]
    assert torch.equal(bank.tokens(), _unit_rows(5, 16, 9))


def test_bank_normalises_and_detaches():
    bank = IDTokenBank(size=4, dim=3)
    t = torch.tensor([[3.0, 0.0, 4.0]], requires_grad=True)
    bank.push(t * 2, torch.tensor([7]))
    assert torch.allclose(bank.tokens(), torch.tensor([[0.6, 0.0, 0.8]]))
    assert not bank.tokens().requires_grad and bank.labels().dtype == torch.int64


def test_bank_state_dict_resume():
    g = torch.Generator().manual_seed(4)
    a = IDTokenBank(size=6, dim=8)
    a.push(torch.randn(9, 8, generator=g), torch.arange(9))
    b = IDTokenBank(size=6, dim=8)
    b.load_state_dict(a.state_dict())
    assert len(b) == 6 and torch.equal(a.tokens(), b.tokens()) and torch.equal(a.labels(), b.labels())
    more = torch.randn(2, 8, generator=g)
    a.push(more, torch.tensor([20, 21]))
    b.push(more, torch.tensor([20, 21]))
    assert torch.equal(a.tokens(), b.tokens()) and b.labels().tolist()[-2:] == [20, 21]
    with pytest.raises(ValueError, match="size"):
        IDTokenBank(size=5, dim=8).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="dim"):
        IDTokenBank(size=6, dim=4).load_state_dict(a.state_dict())
    # as a submodule of the loss: saved and restored with it
    loss_a = IdentityContrastiveLoss(dim=8, bank_size=6)
    loss_a.bank.load_state_dict(a.state_dict())
    loss_b = IdentityContrastiveLoss(dim=8, bank_size=6)
    loss_b.load_state_dict(loss_a.state_dict())
    assert torch.equal(loss_b.bank.tokens(), a.tokens())
    with pytest.raises(ValueError, match="bank"):
        IdentityContrastiveLoss(dim=8, bank_size=3).load_state_dict(loss_a.state_dict())


def test_bank_value_errors():
    with pytest.raises(ValueError, match="size"):
        IDTokenBank(size=0, dim=8)
    with pytest.raises(ValueError, match="dim"):
        IDTokenBank(size=4, dim=0)
    bank = IDTokenBank(size=4, dim=8)
    with pytest.raises(ValueError, match="dimension"):
        bank.push(torch.randn(2, 9), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="tokens"):
        bank.push(torch.randn(8), torch.tensor([0]))
    with pytest.raises(ValueError, match="labels"):
        bank.push(torch.randn(2, 8), torch.tensor([0, 1, 2]))
    assert len(bank) == 0


def test_module_pushes_in_training_mode_only():
    g = torch.Generator().manual_seed(5)
    module = IdentityContrastiveLoss(dim=8, bank_size=16)
    src, aug = torch.randn(3, 8, generator=g), torch.randn(3, 8, generator=g)
    labels = torch.tensor([4, 5, 6])
    expected = identity_contrastive_loss(torch.cat([src, aug]), torch.cat([labels, labels]))
    loss = module(src, aug, labels)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert len(module.bank) == 6 and module.bank.labels().tolist() == [4, 5, 6, 4, 5, 6]
    module.eval()
    module(src, aug, labels)
    assert len(module.bank) == 6


# --------------------------------------------------------------------------------------------------
# augmentation


def test_augment_reproducible_and_in_range():
    photos = _photos()
    a = photometric_augment(photos, torch.Generator().manual_seed(10))
    b = photometric_augment(photos, torch.Generator().manual_seed(10))
    c = photometric_augment(photos, torch.Generator().manual_seed(11))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    for out in (a, c):
        assert out.shape == photos.shape and out.dtype == photos.dtype
        assert out.min() >= 0.0 and out.max() <= 1.0
    half = photometric_augment(photos.half(), torch.Generator().manual_seed(10))
    assert half.dtype == torch.float16 and half.shape == photos.shape
    assert (half.float() - a).abs().max() < 0.02


def test_augment_probabilities_zero_is_identity_and_one_changes():
    photos = _photos()
    off = {name: 0.0 for name in AUGMENTATIONS}
    assert torch.equal(photometric_augment(photos, torch.Generator().manual_seed(0), off), photos)
    on = {name: 1.0 for name in AUGMENTATIONS}
    assert (photometric_augment(photos, torch.Generator().manual_seed(0), on) - photos).abs().mean() > 0.02
    assert set(DEFAULT_PROBABILITIES) == set(AUGMENTATIONS)


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_each_augmentation_changes_the_image(name):
    photos = _photos()
    fn = AUGMENTATIONS[name]
    out = fn(photos, torch.Generator().manual_seed(0))
    assert out.shape == photos.shape and out.dtype == photos.dtype
    assert out.min() >= 0.0 and out.max() <= 1.0
    per_image = (out - photos).abs().mean(dim=(1, 2, 3))
    assert (per_image > 1e-3).all(), f"{name} left an image (almost) unchanged: {per_image.tolist()}"
    only = {n: float(n == name) for n in AUGMENTATIONS}
    assert not torch.equal(photometric_augment(photos, torch.Generator().manual_seed(0), only), photos)


def test_augment_value_errors():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="images"):
        photometric_augment(torch.rand(3, 8, 8), g)
    with pytest.raises(ValueError, match="images"):
        photometric_augment(torch.rand(1, 4, 8, 8), g)
    with pytest.raises(ValueError, match="images"):
        photometric_augment(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), g)
    with pytest.raises(ValueError, match="probabilities"):
        photometric_augment(torch.rand(1, 3, 8, 8), g, {"posterize": 0.5})
    with pytest.raises(ValueError, match="probabilities"):
        photometric_augment(torch.rand(1, 3, 8, 8), g, {"blur": 1.5})
    with pytest.raises(TypeError, match="generator"):
        photometric_augment(torch.rand(1, 3, 8, 8), 0)


# --------------------------------------------------------------------------------------------------
# a short training on two real identities


def _tiny_clip() -> CLIPVisionModel:
    cfg = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=SIZE, patch_size=16
    )
    return CLIPVisionModel(cfg)


def _clip_tokens(clip: CLIPVisionModel, images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return clip_id_tokens(clip(pixel_values=(images - mean) / std).last_hidden_state)


def test_loss_falls_training_tiny_clip_on_two_identities():
    torch.manual_seed(0)
    photos = _photos(2)  # two people → identities 0 and 1
    labels = torch.tensor([0, 1])
    clip = _tiny_clip().train()
    criterion = IdentityContrastiveLoss(dim=32, bank_size=16)
    gen = torch.Generator().manual_seed(123)
    with torch.no_grad():  # fill the bank first so every step sees the same number of candidates
        while len(criterion.bank) < criterion.bank.size:
            criterion(_clip_tokens(clip, photometric_augment(photos, gen)),
                      _clip_tokens(clip, photometric_augment(photos, gen)), labels)
    optimiser = torch.optim.AdamW(clip.parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        view1, view2 = photometric_augment(photos, gen), photometric_augment(photos, gen)
        loss = criterion(_clip_tokens(clip, view1), _clip_tokens(clip, view2), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first, f"loss did not fall: {[round(v, 3) for v in losses]}"
    # and the tokens now tell the two people apart on fresh views
    with torch.no_grad():
        z = F.normalize(torch.cat([_clip_tokens(clip, photometric_augment(photos, gen)) for _ in range(2)]), dim=1)
    sim, same = z @ z.T, torch.tensor([0, 1, 0, 1])[:, None] == torch.tensor([0, 1, 0, 1])[None]
    off_diagonal = ~torch.eye(4, dtype=torch.bool)
    assert sim[same & off_diagonal].min() > sim[~same].max()
