"""Model registry, architectures, MobileNetV2 transfer learning and weight lookup.

The generic tests are parametrized over ``list_models()``, so a newly registered model is covered
without new test code. Nothing here touches the network: a module-wide fixture only lets the
weights downloader read ``file://`` URLs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from emotrace.errors import ModelError
from emotrace.models import (
    _registry,
    build,
    deprecated_models,
    list_models,
    model_info,
    register_model_deprecations,
)
from emotrace.models import pretrained as pretrained_mod
from emotrace.models._common import InvertedResidual
from emotrace.models.mobilenet_v2 import NUM_BLOCKS, MobileNetV2, paper_block_indices
from emotrace.models.mobilevit import MobileViTBlock
from emotrace.models.pretrained import find_or_fetch_weights, load_state_dict_file
from emotrace.models.profile import count_macs, profile

WEIGHTS = "mobilenet_v2-b0353104.pth"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Empty torch hub cache per test, and a downloader that refuses anything but file://."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))

    def local_only(url: str, dst: str, hash_prefix: str | None) -> None:
        if not url.startswith("file://"):
            raise AssertionError(f"test tried to download {url}")
        torch.hub.download_url_to_file(url, dst, hash_prefix=hash_prefix, progress=False)

    monkeypatch.setattr(pretrained_mod, "_default_download", local_only)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """These tensors are tiny: on a busy 2-core machine extra threads only wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def images_for(name: str, batch: int, size: int | None = None) -> torch.Tensor:
    info = model_info(name)
    size = size or info.default_input_size
    return torch.randn(batch, info.default_channels, size, size)


@pytest.mark.parametrize("name", list_models())
def test_forward_shape_and_finite_at_default_geometry(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, num_classes=5).eval()
    x = images_for(name, 2)
    with torch.no_grad():
        logits = model(x)
        features = model.forward_features(x)
    assert logits.shape == (2, 5)
    assert torch.isfinite(logits).all()
    assert features.ndim == 4 and features.shape[1] == model.num_features
    assert isinstance(model.head.fc, nn.Linear) and model.head.fc.out_features == 5


@pytest.mark.parametrize("name", list_models())
def test_every_trainable_parameter_gets_a_gradient(name: str) -> None:
    torch.manual_seed(0)
    model = build(name).train()
    model(images_for(name, 2)).logsumexp(1).sum().backward()
    for pname, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, f"{pname} got no gradient"
            assert torch.isfinite(param.grad).all(), f"{pname} has a non-finite gradient"


def striped_dataset(n: int, channels: int, size: int, classes: int = 3) -> tuple[torch.Tensor, ...]:
    """Noise images whose class is which vertical third carries a bright stripe."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % classes
    x = torch.randn(n, channels, size, size, generator=generator) * 0.5
    third = size // classes
    for i, label in enumerate(labels.tolist()):
        x[i, :, :, label * third : (label + 1) * third] += 2.0
    return x, labels


def build_smallest(name: str, num_classes: int) -> tuple[nn.Module, int]:
    """The model at the smallest of 16/32/48 px it accepts: smoke training stays around 1 s."""
    for size in (16, 32, 48):
        try:
            return build(name, num_classes=num_classes, input_size=size), size
        except ModelError:
            continue
    raise AssertionError(f"{name} accepts no input size up to 48 px")


@pytest.mark.parametrize("name", list_models())
def test_smoke_training_epoch_reduces_loss(name: str) -> None:
    torch.manual_seed(0)
    model, size = build_smallest(name, num_classes=3)
    x, y = striped_dataset(16, model_info(name).default_channels, size)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    model.train()
    losses = []
    for _epoch in range(4):
        epoch_loss = 0.0
        for start in (0, 8):
            loss = nn.functional.cross_entropy(model(x[start : start + 8]), y[start : start + 8])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            epoch_loss += loss.item() / 2
        losses.append(epoch_loss)
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0], losses


def test_unknown_model_name_lists_the_valid_ones() -> None:
    with pytest.raises(ModelError, match="unknown model 'resnet9000'") as info:
        build("resnet9000")
    for name in ("cnn", "mobilenet_v2", "mobilevit_xxs", "mobilevit_xs", "mobilevit_s"):
        assert name in str(info.value)


def test_retired_name_still_builds_with_a_warning_naming_its_successor() -> None:
    # A checkpoint records its architecture's name: one trained as emonet_wide (0.1.0) must load.
    assert "emonet_wide" not in list_models()
    assert "emonet_wide" in list_models("emonet*", include_deprecated=True)
    assert deprecated_models() == {"emonet_wide": "emonet_deep"}
    with pytest.warns(FutureWarning, match="'emonet_wide' is deprecated.*use 'emonet_deep'"):
        model = build("emonet_wide", num_classes=7)
    assert model(torch.randn(2, 1, 48, 48)).shape == (2, 7)
    assert sum(p.numel() for p in model.parameters()) > sum(
        p.numel() for p in build("emonet_deep").parameters()
    )


def test_retired_name_without_a_builder_builds_its_successor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # timm's shim: a renamed model keeps working under its old name.
    monkeypatch.setitem(_registry._DEPRECATED, "emonet_old", "emonet")
    with pytest.warns(FutureWarning, match="use 'emonet'"):
        model = build("emonet_old", num_classes=3)
    assert type(model) is type(build("emonet")) and model(torch.randn(1, 1, 48, 48)).shape == (1, 3)
    with pytest.raises(ValueError, match="unregistered 'resnet9000'"):
        register_model_deprecations({"emonet_older": "resnet9000"})


def test_unknown_model_option_is_a_model_error_listing_the_options() -> None:
    # A misspelt model_options key would otherwise end in a TypeError traceback.
    with pytest.raises(ModelError, match=r"emonet has no option\(s\) widthz") as info:
        build("emonet", widthz=3)
    assert "dropout" in str(info.value)
    with pytest.raises(ModelError, match=r"mobilenet_v2 has no option\(s\) num_blocks") as info:
        build("mobilenet_v2", num_blocks=3)
    for option in ("mode", "unfreeze_blocks", "drop_path"):
        assert option in str(info.value)
    assert "num_classes" not in str(info.value)


@pytest.mark.parametrize("name", ["cnn", "mobilevit_xxs"])
def test_models_without_weights_refuse_pretrained(name: str) -> None:
    with pytest.raises(ModelError, match="no pretrained weights"):
        build(name, pretrained=True)


# MobileViT ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mobilevit_xxs", "mobilevit_xs", "mobilevit_s"])
@pytest.mark.parametrize(("size", "final"), [(48, 3), (64, 4), (96, 6)])
def test_mobilevit_small_inputs(name: str, size: int, final: int) -> None:
    model = build(name, input_size=size).eval()
    with torch.no_grad():
        features = model.forward_features(torch.randn(1, 1, size, size))
        logits = model(torch.randn(1, 1, size, size))
    # stem stride 1 at <= 96 px: a 16x total downsampling, never a single-patch last stage.
    assert features.shape[-2:] == (final, final)
    assert logits.shape == (1, 7) and torch.isfinite(logits).all()


def test_mobilevit_rgb_and_paper_stride() -> None:
    model = build("mobilevit_xxs", in_channels=3, input_size=128).eval()
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 128, 128)).shape[-2:] == (4, 4)
    with pytest.raises(ModelError, match="stem_stride"):
        build("mobilevit_xxs", stem_stride=4)


def test_mobilevit_paper_parameter_counts() -> None:
    # Paper (1000 classes): XXS 1.3 M, XS 2.3 M, S 5.6 M parameters.
    for name, millions in [("mobilevit_xxs", 1.3), ("mobilevit_xs", 2.3), ("mobilevit_s", 5.6)]:
        count = sum(p.numel() for p in build(name, num_classes=1000).parameters())
        assert abs(count / 1e6 - millions) < 0.05, (name, count)


def test_mobilevit_unfold_fold_roundtrip() -> None:
    block = MobileViTBlock(8, 16, depth=1)
    x = torch.arange(2 * 16 * 6 * 4, dtype=torch.float32).reshape(2, 16, 6, 4)
    patches = block.unfold(x)
    assert patches.shape == (2 * 4, 3 * 2, 16)
    # Token j of sequence (b, pixel) is pixel `pixel` of patch j: here patch 0's top-left pixel.
    assert torch.equal(patches[0, 0], x[0, :, 0, 0])
    assert torch.equal(patches[1, 0], x[0, :, 0, 1])
    assert torch.equal(block.fold(patches, 2, 6, 4), x)


# MobileNetV2 --------------------------------------------------------------------------------------


def test_mobilenet_v2_torchvision_key_layout() -> None:
    keys = build("mobilenet_v2").state_dict().keys()
    expected = [
        "features.0.0.weight",
        "features.1.conv.0.0.weight",
        "features.1.conv.2.running_var",
        "features.2.conv.3.num_batches_tracked",
        "features.18.1.bias",
        "head.fc.weight",
    ]
    assert all(key in keys for key in expected)
    assert len([k for k in keys if k.startswith("features.")]) == 312


@pytest.mark.parametrize("size", [48, 64])
def test_mobilenet_v2_small_inputs_and_gray(size: int) -> None:
    model = build("mobilenet_v2", in_channels=1, input_size=size).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, size, size)).shape == (2, 7)


def test_mobilenet_v2_gray_adapt_matches_repeat() -> None:
    torch.manual_seed(0)
    repeat = build("mobilenet_v2", in_channels=1, gray_mode="repeat").eval()
    torch.manual_seed(0)
    adapt = build("mobilenet_v2", in_channels=1, gray_mode="adapt").eval()
    assert adapt.features[0][0].weight.shape == (32, 1, 3, 3)
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(adapt(x), repeat(x), rtol=1e-4, atol=1e-5)


def test_mobilenet_v2_shallower_keeps_each_stages_first_blocks(
    tmp_path: Path, hub_checkpoints: Path
) -> None:
    # repeats 1, 1, 2, 2, 2, 2, 1 keeps paper blocks 1, 2, 4, 5, 7, 8, 11, 12, 14, 15, 17.
    torch.manual_seed(2)
    full = build("mobilenet_v2")
    torch.save(full.state_dict(), tmp_path / "backbone.pth")
    repeats = [1, 1, 2, 2, 2, 2, 1]
    model = build("mobilenet_v2", pretrained=tmp_path / "backbone.pth", repeats=repeats)
    assert len(model.features) == 13
    assert paper_block_indices(tuple(repeats)) == {
        0: 0, 1: 1, 2: 2, 4: 3, 5: 4, 7: 5, 8: 6, 11: 7, 12: 8, 14: 9, 15: 10, 17: 11, 18: 12,
    }  # fmt: skip
    ours, paper = model.state_dict(), full.state_dict()
    for mine, theirs in [(3, 4), (4, 5), (9, 14), (11, 17), (12, 18)]:
        block = {k for k in ours if k.startswith(f"features.{mine}.")}
        assert block
        for key in block:
            assert torch.equal(
                ours[key], paper[key.replace(f"features.{mine}.", f"features.{theirs}.", 1)]
            )
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 64, 64)).shape == (2, 7)
    # The dropped blocks all had shortcuts, so every kept block still gets its input's channels.
    assert all(not model.features[i].use_residual for i in (1, 2, 3, 5, 7, 9, 11))


def test_mobilenet_v2_stochastic_depth_trains_only() -> None:
    model = build("mobilenet_v2", input_size=48, drop_path=0.2)
    blocks = [b for b in model.features if isinstance(b, InvertedResidual)]
    rates = [b.drop_path for b in blocks]
    # Linear in depth up to the given rate; blocks without a shortcut never drop their branch.
    assert rates[-2] == pytest.approx(0.2 * 15 / 16) and rates[-1] == 0.0  # 160 -> 320: no shortcut
    assert all(r == 0.0 for b, r in zip(blocks, rates, strict=True) if not b.use_residual)
    assert rates[0] == 0.0 and max(rates) < 0.2
    residual = [r for b, r in zip(blocks, rates, strict=True) if b.use_residual]
    assert residual == sorted(residual) and residual[0] > 0

    x = torch.randn(3, 3, 48, 48)
    torch.manual_seed(0)
    plain = build("mobilenet_v2", input_size=48).eval()
    torch.manual_seed(0)
    dropping = build("mobilenet_v2", input_size=48, drop_path=0.5).eval()
    with torch.no_grad():
        torch.testing.assert_close(dropping(x), plain(x))  # inference ignores the rate
        dropping.train()
        plain.train()
        assert not torch.allclose(dropping(x), plain(x))


def test_inverted_residual_drops_whole_samples() -> None:
    torch.manual_seed(0)
    block = InvertedResidual(8, 8, 1, 4, drop_path=0.5).train()
    x = torch.randn(400, 8, 6, 6)
    with torch.no_grad():
        branch = block.conv(x)  # BatchNorm in training mode: same batch, same statistics
        out = block(x)
    skipped = torch.isclose(out, x, atol=1e-6).flatten(1).all(1)
    kept = torch.isclose(out, x + branch / 0.5, atol=1e-5).flatten(1).all(1)
    assert bool((skipped ^ kept).all())  # each sample either skips the branch or keeps it, scaled
    assert 0.4 < float(skipped.float().mean()) < 0.6
    with pytest.raises(ValueError, match="drop_path"):
        InvertedResidual(8, 8, 1, 4, drop_path=1.0)


def batchnorms(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]


def test_mobilenet_v2_frozen_trains_head_only_and_keeps_bn_stats() -> None:
    model = build("mobilenet_v2", mode="frozen", input_size=48)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head.fc.weight", "head.fc.bias"}
    before = {k: v.clone() for k, v in model.features.state_dict().items()}
    model.eval().train()  # the trainer toggles modes; frozen BN must stay in eval
    assert model.training and not any(m.training for m in batchnorms(model.features))
    optimizer = torch.optim.SGD(model.parameter_groups(0.1), lr=0.1)
    model(torch.randn(4, 3, 48, 48)).sum().backward()
    optimizer.step()
    after = model.features.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [len(g["params"]) for g in model.parameter_groups(0.1)] == [2]


def test_mobilenet_v2_finetune_last_blocks() -> None:
    model = build("mobilenet_v2", mode="finetune", unfreeze_blocks=3)
    trainable = {".".join(n.split(".")[:2]) for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"features.16", "features.17", "features.18", "head.fc"}
    assert not any(m.training for m in batchnorms(model.features[: NUM_BLOCKS - 3]))
    assert all(m.training for m in batchnorms(model.features[NUM_BLOCKS - 3 :]))
    everything = build("mobilenet_v2", mode="finetune", unfreeze_blocks=0)
    assert all(p.requires_grad for p in everything.parameters())


def test_mobilenet_v2_parameter_groups_lower_backbone_lr() -> None:
    model = build("mobilenet_v2", backbone_lr_mult=0.1)
    head, backbone = model.parameter_groups(0.01)
    assert head["lr"] == 0.01 and backbone["lr"] == pytest.approx(0.001)
    assert {id(p) for p in head["params"]} == {id(p) for p in model.head.parameters()}
    assert len(head["params"]) + len(backbone["params"]) == len(list(model.parameters()))
    # Without pretrained weights a slower backbone would only slow training down.
    assert build("mobilenet_v2").backbone_lr_mult == 1.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"mode": "linear"}, "mode must be one of"),
        ({"gray_mode": "average"}, "gray_mode must be one of"),
        ({"unfreeze_blocks": 20}, "between 0 and 19"),
        ({"mode": "frozen", "unfreeze_blocks": 2}, "needs mode='finetune'"),
        ({"in_channels": 4}, "1 \\(gray\\) or 3"),
        ({"input_size": 16}, "input_size >= 32"),
        ({"drop_path": 1.0}, "drop_path must be in"),
        ({"drop_path": -0.1}, "drop_path must be in"),
        ({"repeats": [1, 2, 3]}, "repeats must be 7 whole numbers"),
        ({"repeats": [1, 2, 3, 5, 3, 3, 1]}, "each from 1 to the paper's 1, 2, 3, 4, 3, 3, 1"),
        ({"repeats": [1, 0, 3, 4, 3, 3, 1]}, "repeats must be"),
        ({"repeats": [1, 1, 1, 1, 1, 1, 1], "unfreeze_blocks": 10}, "between 0 and 9"),
    ],
)
def test_mobilenet_v2_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ModelError, match=message):
        build("mobilenet_v2", **options)


@pytest.fixture
def hub_checkpoints() -> Path:
    """The (empty) ``checkpoints`` folder of this test's TORCH_HOME."""
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    folder.mkdir(parents=True)
    return folder


def test_mobilenet_v2_pretrained_from_a_given_file(tmp_path: Path, hub_checkpoints: Path) -> None:
    # A machine without network is given the backbone by hand (scripts/gpu/): the file is used as
    # it is, no torch hub lookup or download (the empty hub folder would make one fail).
    torch.manual_seed(1)
    source = build("mobilenet_v2")
    state = {k: v.half().float() for k, v in source.state_dict().items()}  # an fp16-rounded copy
    torch.save(state, tmp_path / "backbone.pth")
    for given in (tmp_path / "backbone.pth", str(tmp_path / "backbone.pth")):
        model = build("mobilenet_v2", pretrained=given)
        loaded = model.state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in state.items() if k.startswith("features."))
        assert model.backbone_lr_mult == 0.1  # pretrained: the backbone's lower rate
    assert not list(hub_checkpoints.iterdir())
    with pytest.raises(ModelError, match="cannot read weights file"):
        build("mobilenet_v2", pretrained=tmp_path / "missing.pth")


@pytest.mark.parametrize(
    "options",
    [{"pretrained_weights": "backbone.pth"}, {"pretrained": True, "pretrained_weights": ""}],
)
def test_pretrained_weights_needs_pretrained_and_a_file(options: dict[str, object]) -> None:
    from emotrace.errors import ConfigError
    from emotrace.training.config import TrainConfig

    with pytest.raises(ConfigError, match="pretrained_weights is a weights file"):
        TrainConfig(**options)  # type: ignore[arg-type]


@pytest.mark.needs_shared
def test_mobilenet_v2_loads_imagenet_checkpoint(shared_dir: Path, hub_checkpoints: Path) -> None:
    source = shared_dir / "weights" / WEIGHTS
    shutil.copy(source, hub_checkpoints / WEIGHTS)
    reference = torch.load(source, map_location="cpu", weights_only=True)
    model = build("mobilenet_v2", pretrained=True)
    assert torch.equal(model.features[0][0].weight, reference["features.0.0.weight"])
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in reference.items() if k.startswith("features."))
    assert model.backbone_lr_mult == 0.1
    gray = build("mobilenet_v2", pretrained=True, in_channels=1, gray_mode="adapt")
    expected = reference["features.0.0.weight"].sum(1, keepdim=True)
    torch.testing.assert_close(gray.features[0][0].weight, expected)


@pytest.mark.needs_shared
def test_weights_fetched_from_file_url_and_verified(shared_dir: Path) -> None:
    url = (shared_dir / "weights" / WEIGHTS).resolve().as_uri()
    path = find_or_fetch_weights(url=url)
    assert path == Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS and path.is_file()
    assert find_or_fetch_weights(url="file:///nowhere") == path  # second call: found, no fetch


@pytest.mark.needs_shared
def test_truncated_checkpoint_raises_model_error(shared_dir: Path, hub_checkpoints: Path) -> None:
    data = (shared_dir / "weights" / WEIGHTS).read_bytes()
    (hub_checkpoints / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="corrupted"):
        build("mobilenet_v2", pretrained=True)
    with pytest.raises(ModelError, match="cannot read weights file"):
        load_state_dict_file(hub_checkpoints / WEIGHTS)


def test_garbage_weights_file_raises_model_error(hub_checkpoints: Path) -> None:
    (hub_checkpoints / WEIGHTS).write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="corrupted or not the expected file"):
        build("mobilenet_v2", pretrained=True)
    unverified = find_or_fetch_weights(sha256_prefix=None)
    with pytest.raises(ModelError, match="cannot read weights file"):
        load_state_dict_file(unverified)


def test_foreign_state_dict_raises_model_error(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"features.0.0.weight": torch.zeros(1)}, path)
    with pytest.raises(ModelError, match="not a torchvision mobilenet_v2 checkpoint"):
        MobileNetV2(weights=path)


def test_missing_weights_and_unreachable_url_say_where_to_put_the_file(tmp_path: Path) -> None:
    missing = (tmp_path / "nowhere" / WEIGHTS).as_uri()
    with pytest.raises(ModelError, match=r"place it at .*checkpoints/mobilenet_v2-b0353104\.pth"):
        find_or_fetch_weights(url=missing)

    def failing(url: str, dst: str, hash_prefix: str | None) -> None:
        raise OSError("network is unreachable")

    with pytest.raises(ModelError, match="network is unreachable"):
        find_or_fetch_weights(download=failing)


# Profiling ----------------------------------------------------------------------------------------


def test_count_macs_of_known_layers() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    assert count_macs(model, torch.zeros(1, 3, 4, 4)) == 8 * 16 * 27 + 128 * 10


def test_profile_counts_attention_matmuls() -> None:
    params, mmacs = profile("mobilevit_xxs")
    model = build("mobilevit_xxs")
    assert params == sum(p.numel() for p in model.parameters())
    layers_only = count_macs(model.apply(_drop_matmul_hint), torch.zeros(1, 1, 64, 64)) / 1e6
    assert 0 < layers_only < mmacs < 1.2 * layers_only


def _drop_matmul_hint(module: nn.Module) -> None:
    if hasattr(module, "matmul_macs"):
        module.matmul_macs = None
