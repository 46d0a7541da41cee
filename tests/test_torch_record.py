"""``tinspect.torch.Recorder`` on real PyTorch models, read back with h5py and tinspect.

Three models of the issue (an MLP, a small CNN with a residual add, a model with a custom
module and functional activations) trained on digits with a plain loop; each test checks
the files against the model itself: shapes, the state_dict, eval-mode outputs, the graph.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tinspect  # noqa: E402
from tinspect import format as fmt  # noqa: E402
from tinspect.torch import Recorder  # noqa: E402

from . import torch_models as tm  # noqa: E402
from .checkpoint_io import epochs, model_dir, read  # noqa: E402

N = 96  # recorded samples


@pytest.fixture(autouse=True)
def no_disk_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINSPECT_CACHE_DIR", "off")


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return tm.digits()


def train_and_record(
    logdir: Path,
    name: str,
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    n_epochs: int = 3,
    **kwargs: Any,
) -> tuple[Path, Any]:
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    header = tinspect.make_header(name=name, batch_size=64)
    with Recorder(
        logdir, header, model, samples=(x[:N], y[:N]), optimizer=optimizer, **kwargs
    ) as rec:
        rec.checkpoint(0)
        for epoch in range(1, n_epochs + 1):
            loss = tm.train_epoch(model, optimizer, x[N:800], y[N:800])
            rec.checkpoint(epoch, metrics={"loss": loss, "val_loss": loss * 1.1})
    assert rec.errors == []
    return model_dir(logdir), optimizer


def model_json(directory: Path) -> dict[str, Any]:
    return json.loads((directory / fmt.MODEL_JSON).read_text())


def layers_of(info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {layer["name"]: layer for layer in info["architecture"]["layers"]}


def test_mlp_shapes_weights_and_eval_mode(tmp_path: Path, data: Any) -> None:
    x, y = data
    torch.manual_seed(0)
    model = tm.mlp()
    directory, _ = train_and_record(tmp_path, "mlp", model, x, y)
    assert epochs(directory) == [0, 1, 2, 3]
    last = read(directory / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(3))
    # Every state_dict entry is stored under its module as a layer, equal to the trained value.
    state = model.state_dict()
    for key, value in state.items():
        layer, variable = key.rsplit(".", 1)
        stored = last[f"layers/{layer}/weights/{variable}"]
        np.testing.assert_array_equal(stored, value.numpy(), err_msg=key)
    # Activations of every leaf module, in eval mode (Dropout is the identity then).
    expected_shapes = {
        "0": (N, 32),
        "1": (N, 32),
        "2": (N, 32),
        "3": (N, 16),
        "4": (N, 16),
        "5": (N, 10),
    }
    model.eval()
    with torch.no_grad():
        h = torch.from_numpy(x[:N])
        outputs = {}
        for name, module in model.named_children():
            h = module(h)
            outputs[name] = h.numpy()
    for name, shape in expected_shapes.items():
        activations = last[f"layers/{name}/activations"]
        assert activations.shape == shape and activations.dtype == np.float16, name
        np.testing.assert_allclose(activations, outputs[name], atol=2e-3, rtol=2e-3)
        assert last[f"layers/{name}/mean_class_activations"].shape == (10, shape[1])
    np.testing.assert_allclose(last["data_samples/y_prediction"], outputs["5"], atol=1e-5)
    np.testing.assert_array_equal(last["data_samples/x"], x[:N])
    np.testing.assert_array_equal(last["data_samples/y_class"], y[:N])
    # Dropout in eval mode repeats ReLU's output byte for byte: stored once (hard link).
    assert last["layer_attrs"]["2"].get(fmt.ATTR_ACTIVATIONS_OF) == "1"
    # Class means from float32 values before the cast.
    for c in (0, 3):
        np.testing.assert_allclose(
            last["layers/3/mean_class_activations"][c],
            outputs["3"][y[:N] == c].mean(axis=0),
            atol=1e-5,
        )
    info = model_json(directory)
    layers = layers_of(info)
    assert info["architecture"]["graph"] is True
    assert info["architecture"]["inputs"] == ["input"]
    assert info["architecture"]["outputs"] == ["5"]
    assert [layers[n]["inbound"] for n in "012345"] == [
        ["input"],
        ["0"],
        ["1"],
        ["2"],
        ["3"],
        ["4"],
    ]
    assert (
        layers["0"]["config"]["in_features"] == 64 and layers["0"]["config"]["out_features"] == 32
    )
    assert layers["1"]["activation"] == "relu" and layers["4"]["activation"] == "tanh"
    assert layers["2"]["operations"] == [{"op": "dropout", "rate": 0.1}]
    assert layers["0"]["params"] == {"trainable": 64 * 32 + 32, "non_trainable": 0}
    assert info["training"]["optimizer"]["class_name"] == "Adam"
    assert info["status"]["state"] == "finished" and info["status"]["epochs_completed"] == 3
    lines = [json.loads(line) for line in (directory / fmt.METRICS_JSONL).read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [1, 2, 3]
    assert lines[-1]["step"] == 3 * 11 and lines[-1]["learning_rate"] == pytest.approx(1e-2)
    assert json.loads(last["attrs"][fmt.ATTR_METRICS])["loss"] == lines[-1]["loss"]


def test_max_activation_bytes_keeps_the_first_samples_that_fit(tmp_path: Path, data: Any) -> None:
    """The Keras callback's byte cap: the first samples whose activations fit, with one
    warning, in every checkpoint and in model.json; class means and predictions of those."""
    from tinspect.record.samples import MAX_ACTIVATION_BYTES, MIN_CAPPED_SAMPLES

    x, y = data
    per_sample = (32 + 32 + 32 + 16 + 16 + 10) * 2  # every recorded layer, float16
    torch.manual_seed(0)
    model = tm.mlp()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        directory, _ = train_and_record(
            tmp_path, "capped", model, x, y, max_activation_bytes=70 * per_sample + 1
        )
    notices = [str(w.message) for w in caught if "max_activation_bytes" in str(w.message)]
    assert notices == [
        f"tinspect: recording 70 of the {N} samples given for 'capped': their activations take "
        f"{per_sample} bytes each, and max_activation_bytes={70 * per_sample + 1:,} per "
        "checkpoint (pass max_activation_bytes=None to record all)"
    ]
    info = model_json(directory)
    assert info["recording"]["n_samples"] == info["dataset"]["n_samples"] == 70
    assert info["recording"]["max_activation_bytes"] == 70 * per_sample + 1
    model.eval()
    with torch.no_grad():
        outputs = model(torch.from_numpy(x[:70])).numpy()
    for epoch in (0, 3):
        f = read(directory / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(epoch))
        assert f["attrs"][fmt.ATTR_N_SAMPLES] == 70
        np.testing.assert_array_equal(f["data_samples/x"], x[:70])
        np.testing.assert_array_equal(f["data_samples/y_class"], y[:70])
        assert f["data_samples/y_prediction"].shape == (70, 10)
        assert f["layers/0/activations"].shape == (70, 32)
        means = f["layers/5/mean_class_activations"]
        assert not np.isnan(means).any()  # every class is among the first 70 digits
    np.testing.assert_allclose(f["data_samples/y_prediction"], outputs, atol=1e-5)
    for c in (0, 7):
        np.testing.assert_allclose(means[c], outputs[y[:70] == c].mean(axis=0), atol=1e-5)
    # Never below the floor; the default keeps these small samples; None: no cap.
    tiny = Recorder(
        tmp_path / "floor",
        tinspect.make_header(name="floor"),
        tm.mlp(),
        (x[:N], y[:N]),
        max_activation_bytes=1,
        checks=False,
    )
    with pytest.warns(UserWarning, match=f"recording {MIN_CAPPED_SAMPLES} of the {N}"):
        tiny.checkpoint(0)
    tiny.close()
    assert model_json(model_dir(tmp_path / "floor"))["recording"]["n_samples"] == 64
    for cap in (MAX_ACTIVATION_BYTES, None):
        logdir = tmp_path / f"cap-{cap}"
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no notice
            rec = Recorder(
                logdir,
                tinspect.make_header(name="all"),
                tm.mlp(),
                (x[:N], y[:N]),
                max_activation_bytes=cap,
                checks=False,
            )
            rec.checkpoint(0)
            rec.close()
        recording = model_json(model_dir(logdir))["recording"]
        assert recording["n_samples"] == N and recording["max_activation_bytes"] == cap


def test_modes_and_gradients_are_restored(tmp_path: Path, data: Any) -> None:
    x, y = data
    model = tm.SmallCNN()
    model.train()
    model.bn.eval()  # a user's own choice for one module is kept too
    rec = Recorder(
        tmp_path, tinspect.make_header(name="m"), model, (x[:N].reshape(-1, 1, 8, 8), y[:N])
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rec.checkpoint(0)
    rec.close()
    assert model.training and model.fc.training and not model.bn.training
    assert all(p.grad is None for p in model.parameters())
    for key, value in model.state_dict().items():  # running stats untouched (eval mode)
        assert torch.equal(value, before[key]), key


def test_cnn_with_residual_add_graph_and_channel_axis(tmp_path: Path, data: Any) -> None:
    x, y = data
    images = x.reshape(-1, 1, 8, 8)
    torch.manual_seed(0)
    model = tm.SmallCNN()
    directory, _ = train_and_record(tmp_path, "cnn", model, images, y, input_kind="image")
    info = model_json(directory)
    layers = layers_of(info)
    order = [layer["name"] for layer in info["architecture"]["layers"]]
    assert order == [
        "x",
        "stem",
        "bn",
        "act",
        "block.conv1",
        "block.conv2",
        "add",
        "pool",
        "flat",
        "fc",
    ]
    # The residual add is a merge with a skip edge from act, as Keras' Add layer would be.
    assert layers["add"]["class_name"] == "Add" and layers["add"]["inbound"] == [
        "act",
        "block.conv2",
    ]
    assert layers["pool"]["inbound"] == ["add"]
    assert layers["block.conv1"]["operations"][-1] == {"op": "relu", "functional": True}
    assert layers["stem"]["config"]["kernel_size"] == [3, 3]
    assert layers["stem"]["config"]["data_format"] == "channels_first"
    # Channels-first outputs name their unit axis; the linear layers' units are last.
    for name in ("stem", "bn", "act", "block.conv1", "block.conv2", "add", "pool"):
        assert layers[name]["channel_axis"] == 1, name
    assert "channel_axis" not in layers["flat"] and "channel_axis" not in layers["fc"]
    assert "add" in info["recording"]["skipped"]
    last = read(directory / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(3))
    assert last["layers/stem/activations"].shape == (N, 8, 8, 8)
    assert last["layers/stem/mean_class_activations"].shape == (10, 8, 8, 8)
    assert last["layers/bn/weights/running_mean"].shape == (8,)
    assert int(last["layers/bn/weights/num_batches_tracked"]) == 3 * 11
    # ReLU(inplace=True) overwrites bn's output in place: bn's stored values are from before.
    assert last["layers/bn/activations"].min() < 0 <= last["layers/act/activations"].min()
    np.testing.assert_array_equal(
        last["layers/flat/activations"], last["layers/pool/activations"].reshape(N, 8)
    )
    state = model.state_dict()
    for key, value in state.items():
        layer, variable = key.rsplit(".", 1)
        np.testing.assert_array_equal(last[f"layers/{layer}/weights/{variable}"], value.numpy())

    # The read side sees channels as the units of channels-first layers.
    from tinspect.query import Query, run
    from tinspect.store import Store

    with Store(tmp_path) as store:
        (model_id,) = store.models
        assert store.models[model_id].layer("stem").units == 8
        table = run(
            store, Query(("cnn/stem",), data="activations", step="unit_stats", epochs="last")
        )
        rows = list(table.rows())
        assert len(rows) == 8
        means = [r[table.columns.index("mean")] for r in rows]
        expected = last["layers/stem/activations"].astype(np.float64).mean(axis=(0, 2, 3))
        np.testing.assert_allclose(means, expected, rtol=1e-6)
        table = run(
            store, Query(("cnn/stem/#3",), data="activations", step="summary", epochs="last")
        )
        stats = dict(zip(table.columns, next(iter(table.rows())), strict=True))
        channel = last["layers/stem/activations"][:, 3].astype(np.float64)
        assert stats["mean"] == pytest.approx(channel.mean()) and stats["count"] == channel.size
        table = run(
            store, Query(("cnn/stem",), data="activations", step="class_means", epochs="last")
        )
        by = {(r[2], r[4]): r[5] for r in table.rows()}
        stored = last["layers/stem/mean_class_activations"].astype(np.float64).mean(axis=(2, 3))
        assert by[(4, 5)] == pytest.approx(stored[4, 5], rel=1e-5)


def test_custom_module_and_functional_activations(tmp_path: Path, data: Any) -> None:
    x, y = data
    torch.manual_seed(0)
    model = tm.CustomNet()
    directory, _ = train_and_record(tmp_path, "custom", model, x, y)
    info = model_json(directory)
    layers = layers_of(info)
    assert [layer["name"] for layer in info["architecture"]["layers"]] == [
        "x",
        "fc1",
        "scale",
        "out",
    ]
    assert layers["fc1"]["operations"] == [
        {"op": "matmul", "variable": "weight"},
        {"op": "add", "variable": "bias"},
        {"op": "gelu", "functional": True},
    ]
    assert layers["scale"]["class_name"] == "Scale"
    assert layers["scale"]["operations"] == [{"op": "Scale"}, {"op": "relu", "functional": True}]
    assert layers["scale"]["inbound"] == ["fc1"] and layers["out"]["inbound"] == ["scale"]
    assert [v["name"] for v in layers["scale"]["variables"]] == ["gain", "shift"]
    assert layers["scale"]["params"] == {"trainable": 32, "non_trainable": 32}
    last = read(directory / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(3))
    np.testing.assert_array_equal(
        last["layers/scale/weights/gain"], model.scale.gain.detach().numpy()
    )
    # A hook sees the module's own output: before the functional relu that follows it.
    assert last["layers/scale/activations"].min() < 0
    assert last["layers/fc1/activations"].shape == (N, 32)


def test_untraceable_model_gets_the_module_tree_in_execution_order(
    tmp_path: Path, data: Any
) -> None:
    x, y = data
    directory, _ = train_and_record(tmp_path, "branchy", tm.Branchy(), x, y, n_epochs=1)
    info = model_json(directory)
    arch = info["architecture"]
    assert arch["graph"] is False and "trace_error" in arch
    assert [layer["name"] for layer in arch["layers"]] == ["a", "b"]
    assert all(layer["inbound"] == [] for layer in arch["layers"])
    assert arch["layers"][0]["output_shape"] == [None, 16]
    assert read(directory / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(1))[
        "layers/b/activations"
    ].shape == (N, 10)


def test_direct_forward_call_is_warned_once(tmp_path: Path, data: Any) -> None:
    x, y = data
    model = tm.DirectForward()
    with pytest.warns(UserWarning, match=r"1 layer\(s\) .* \(a\)") as caught:
        rec = Recorder(tmp_path, tinspect.make_header(name="direct"), model, (x[:N], y[:N]))
        rec.checkpoint(0)
        rec.checkpoint(1)
        rec.close()
    assert sum("forward hooks" in str(w.message) for w in caught) == 1
    directory = model_dir(tmp_path)
    info = model_json(directory)
    assert "a" in info["recording"]["skipped"] and info["recording"]["layers"] == ["b"]
    last = read(directory / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(1))
    assert "layers/a/activations" not in last and "layers/a/weights/weight" in last
    assert "skipped" in last["layer_attrs"]["a"]


def test_compiled_model_is_recorded_through_its_original_module(tmp_path: Path, data: Any) -> None:
    x, y = data
    torch.manual_seed(0)
    model = tm.mlp()
    compiled = torch.compile(model, backend="eager")
    with pytest.warns(UserWarning, match="torch.compile") as caught:
        rec = Recorder(tmp_path, tinspect.make_header(name="compiled"), compiled, (x[:N], y[:N]))
        rec.checkpoint(0)
        rec.checkpoint(1)
        rec.close()
    assert sum("torch.compile" in str(w.message) for w in caught) == 1
    info = model_json(model_dir(tmp_path))
    assert info["recording"]["layers"] == ["0", "1", "2", "3", "4", "5"]
    last = read(model_dir(tmp_path) / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(1))
    np.testing.assert_array_equal(last["layers/0/weights/weight"], model[0].weight.detach().numpy())


def test_every_and_close_write_the_last_epoch(tmp_path: Path, data: Any) -> None:
    x, y = data
    model = tm.mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = Recorder(
        tmp_path,
        tinspect.make_header(name="every"),
        model,
        (x[:N], y[:N]),
        every=2,
        layers=["0", "5"],
        checks=False,
    )
    for epoch in range(0, 6):
        if epoch:
            tm.train_epoch(model, optimizer, x[N:400], y[N:400])
        rec.checkpoint(epoch, metrics={"loss": torch.tensor(0.5, requires_grad=True) * 2})
    rec.close()
    directory = model_dir(tmp_path)
    assert epochs(directory) == [0, 2, 4, 5]
    last = read(directory / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(5))
    assert "layers/0/activations" in last and "layers/3/activations" not in last
    assert "layers/3/weights/weight" in last  # weights of every layer are kept
    np.testing.assert_array_equal(last["layers/3/weights/weight"], model[3].weight.detach().numpy())
    lines = (directory / fmt.METRICS_JSONL).read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[0])["loss"] == 1.0
    assert not (directory / fmt.FINDINGS_JSONL).exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every": 0}, "Received: every=0"),
        ({"max_samples": 0}, "Received: max_samples=0"),
        ({"max_activation_bytes": 0}, "Received: max_activation_bytes=0"),
        ({"max_activation_bytes": 1.5}, "Received: max_activation_bytes=1.5"),
        ({"activations_dtype": "int8"}, "Received: activations_dtype='int8'"),
        ({"compression": "zip"}, "Received: compression='zip'"),
        ({"input_kind": "audio"}, "Received: input_kind='audio'"),
        ({"output_kind": "ranking"}, "Received: output_kind='ranking'"),
        ({"checks": "yes"}, "Received: checks='yes'"),
        ({"layers": "0"}, "Received: layers='0'"),
        ({"layers": ["nope"]}, "Received: layers=['nope']"),
        ({"class_names": ["a"]}, "Received: class_names=['a']"),
        ({"optimizer": "adam"}, "Received: optimizer of type str"),
    ],
)
def test_keyword_arguments_are_validated(
    tmp_path: Path, data: Any, kwargs: dict[str, Any], message: str
) -> None:
    x, y = data
    with pytest.raises(
        (ValueError, TypeError), match=message.replace("[", r"\[").replace("(", r"\(")
    ):
        Recorder(tmp_path, tinspect.make_header(name="bad"), tm.mlp(), (x[:N], y[:N]), **kwargs)


def test_bad_calls_are_refused_with_the_value(tmp_path: Path, data: Any) -> None:
    x, y = data
    with pytest.raises(TypeError, match="Received: model of type Sequential"):
        import keras  # a Keras model is the likely mistake

        Recorder(tmp_path, tinspect.make_header(name="bad"), keras.Sequential(), (x, y))
    rec = Recorder(
        tmp_path, tinspect.make_header(name="ok"), tm.mlp(), (x[:N], y[:N]), checks=False
    )
    rec.checkpoint(0)
    with pytest.raises(ValueError, match="Received: epoch=0"):
        rec.checkpoint(0)
    with pytest.raises(ValueError, match="Received: epoch=-1"):
        rec.checkpoint(-1)
    with pytest.raises(TypeError, match=r"Received: metrics=0\.5"):
        rec.checkpoint(1, metrics=0.5)  # type: ignore[arg-type]
    rec.close()


def test_samples_as_tensors_and_several_outputs(tmp_path: Path, data: Any) -> None:
    x, y = data

    class TwoHeads(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Linear(64, 8)
            self.head = torch.nn.Linear(8, 10)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            h = self.body(x)
            return self.head(h), h

    model = TwoHeads()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean model gives no warning
        with Recorder(
            tmp_path,
            tinspect.make_header(name="two"),
            model,
            (torch.from_numpy(x[:N]).double(), torch.from_numpy(y[:N])),
        ) as rec:
            rec.checkpoint(0)
    last = read(model_dir(tmp_path) / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(0))
    assert last["data_samples/x"].dtype == np.float64  # stored as given, fed as float32
    assert last["data_samples/y_prediction"].shape == (N, 10)
    assert last["data_samples/y_prediction_1"].shape == (N, 8)
    info = model_json(model_dir(tmp_path))
    assert info["architecture"]["outputs"] == ["head", "body"]


def test_a_second_run_with_the_same_header_is_refused(tmp_path: Path, data: Any) -> None:
    x, y = data
    header = tinspect.make_header(name="once")
    with Recorder(tmp_path, header, tm.mlp(), (x[:N], y[:N]), checks=False) as rec:
        rec.checkpoint(0)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        Recorder(tmp_path, header, tm.mlp(), (x[:N], y[:N]))


def test_h5_files_are_plain(tmp_path: Path, data: Any) -> None:
    """No temporary file is left behind and every file opens read-only."""
    x, y = data
    directory, _ = train_and_record(tmp_path, "plain", tm.mlp(), x, y, n_epochs=1)
    names = sorted(p.name for p in (directory / fmt.CHECKPOINTS_DIR).iterdir())
    assert names == ["epoch-0000.h5", "epoch-0001.h5"]
    with h5py.File(directory / fmt.CHECKPOINTS_DIR / names[-1], "r") as f:
        assert f.attrs[fmt.ATTR_FORMAT_VERSION] == fmt.FORMAT_VERSION
        assert f.attrs[fmt.ATTR_RUNTIME_PER_SAMPLE] > 0


def test_samples_that_do_not_fit_fail_at_the_first_checkpoint(tmp_path: Path, data: Any) -> None:
    x, y = data
    rec = Recorder(tmp_path, tinspect.make_header(name="wrong"), tm.mlp(), (x[:N, :10], y[:N]))
    with pytest.raises(ValueError, match=r"Received: samples x of shape \(96, 10\)"):
        rec.checkpoint(0)


def test_attention_and_recurrent_layers_record_their_first_output(tmp_path: Path) -> None:
    class Sequence(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Linear(4, 16)
            self.att = torch.nn.MultiheadAttention(16, 2, batch_first=True)
            self.lstm = torch.nn.LSTM(16, 8, batch_first=True)
            self.out = torch.nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.emb(x)
            a, _ = self.att(h, h, h)
            o, _ = self.lstm(h + a)
            return self.out(o[:, -1])

    rng = np.random.default_rng(0)
    x, y = rng.random((32, 5, 4), dtype=np.float32), rng.integers(0, 3, 32)
    header = tinspect.make_header(name="seq")
    with (
        pytest.warns(UserWarning, match=r"att\.out_proj"),  # MHA uses its weight directly
        Recorder(tmp_path, header, Sequence(), (x, y), input_kind="sequence") as rec,
    ):
        rec.checkpoint(0)
    info = model_json(model_dir(tmp_path))
    layers = layers_of(info)
    assert info["architecture"]["graph"] is True
    assert layers["add"]["inbound"] == ["emb", "att"] and layers["lstm"]["inbound"] == ["add"]
    assert layers["att"]["operations"] == [{"op": "attention", "num_heads": 2}]
    assert layers["att.out_proj"]["class_name"] == "NonDynamicallyQuantizableLinear"
    assert layers["att.out_proj"]["operations"][0] == {"op": "matmul", "variable": "weight"}
    last = read(model_dir(tmp_path) / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(0))
    assert last["layers/att/activations"].shape == (32, 5, 16)
    assert last["layers/lstm/activations"].shape == (32, 5, 8)
    assert "channel_axis" not in layers["lstm"]


def test_compiled_submodule_is_recorded_eagerly_with_its_edges(tmp_path: Path, data: Any) -> None:
    x, y = data
    model = tm.SmallCNN()
    model.block = torch.compile(model.block, backend="eager")
    with pytest.warns(UserWarning, match="submodules block are torch.compile'd") as caught:
        rec = Recorder(
            tmp_path, tinspect.make_header(name="sub"), model, (x[:N].reshape(-1, 1, 8, 8), y[:N])
        )
        rec.checkpoint(0)
        rec.close()
    assert sum("torch.compile" in str(w.message) for w in caught) == 1
    assert type(model.block).__name__ == "OptimizedModule"  # put back
    layers = layers_of(model_json(model_dir(tmp_path)))
    assert layers["add"]["inbound"] == ["act", "block._orig_mod.conv2"]  # state_dict names
    last = read(model_dir(tmp_path) / fmt.CHECKPOINTS_DIR / fmt.checkpoint_name(0))
    assert last["layers/block._orig_mod.conv1/activations"].shape == (N, 8, 8, 8)
