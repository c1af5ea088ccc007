"""Firmware that holds only what the model uses (docs/embedded.md, "Configuring a firmware build").

tools/egru2c.py --config writes the EGRU_CFG_* options of exactly what a model uses; the runtime
compiled with `-include` that header must (a) give the same outputs, bit for bit, as the full
runtime compiled with the same flags, (b) refuse with EGRU_ERR_UNSUPPORTED a model that needs a
left-out feature, (c) compute the same CRC-32 without its table (zlib.crc32 is the reference),
and (d) be smaller on a Cortex-M4. Both runtimes are built on the host (cc, ext/Makefile's strict
flags) with ext/tests/egru_config_driver.c, once per configuration and per test session.
Missing compilers are a failure, not a skip (tools/install-system-deps.sh installs them).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from ir_models import CASES, build, build_more, inputs, masked_inputs

from edgegru import format as fmt

ROOT = Path(__file__).resolve().parents[1]
EXT = ROOT / "ext"
EGRU2C = ROOT / "tools" / "egru2c.py"
DRIVER = EXT / "tests" / "egru_config_driver.c"
FEATURES_H = EXT / "src" / "egru_features.h"
# ext/Makefile's WARN (strict warnings, no contraction); one optimisation level for both builds,
# so a difference in outputs can only come from the configuration.
STRICT = [
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-Wshadow",
    "-Wstrict-prototypes",
    "-Wmissing-prototypes",
    "-Wcast-align",
    "-Wconversion",
    "-Wno-sign-conversion",
    "-ffp-contract=off",
]
HOST_FLAGS = ["-O2"]
ASAN_FLAGS = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
CORTEX_M4 = [
    "-mcpu=cortex-m4",
    "-mthumb",
    "-mfloat-abi=hard",
    "-mfpu=fpv4-sp-d16",
    "-Os",
    "-ffunction-sections",
    "-fdata-sections",
]
SOURCES = sorted(str(p) for p in (EXT / "src").glob("**/*.c"))
EGRU_OK, EGRU_ERR_UNSUPPORTED = 0, -11
EGRU_INIT_TRUSTED_PAYLOAD = 0x1
# The configuration egru2c writes for a GRU + Dense model leaves out of the unlinked Cortex-M4
# library at least this much .text (measured 6,247 bytes of 16,608 before the forward and
# session code is guarded by op; the CRC table and status strings alone are 2.1 KB).
MIN_M4_TEXT_SAVED = 4000

# (case, batch, steps): one model per group of features. Features are the ops and activations
# in the names, plus: tokens_gru_sigmoid_reset_after GRU reset_after; features_gru_softmax_
# reset_before reset_before and softmax; affine_layernorm Affine, LayerNorm, LSTM;
# conv_same_strided Conv1D (same, strided) with relu; mask_zero_bidir_sequences masks and
# Bidirectional.
EQUAL_CASES = [
    ("tokens_gru_sigmoid_reset_after", 3, 7),
    ("features_gru_softmax_reset_before", 2, 6),
    ("affine_layernorm", 2, 5),
    ("conv_same_strided", 2, 9),
    ("mask_zero_bidir_sequences", 5, 6),
]


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (tools/install-system-deps.sh installs it)"
    return path


def _run(cmd, **kw) -> str:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def _model(case: str) -> tuple:
    """(ir model, whether its inputs are padded) of a case of tests/ir_models.py."""
    model = build(case) if case in CASES else build_more(case)
    masked = case.startswith("mask")
    return model, masked


def _write_case(dir_: Path, case: str, batch: int, steps: int, quantize=None) -> tuple:
    """Writes the case's .egru and raw input into dir_; returns (model path, input path)."""
    model, masked = _model(case)
    x = (masked_inputs if masked else inputs)(model, batch, steps, seed=batch * 10 + steps)
    blob = fmt.write(model, quantize=quantize)
    path = dir_ / f"{case}{'-' + quantize if quantize else ''}.egru"
    path.write_bytes(blob)
    raw = dir_ / f"{case}-{batch}x{steps}.bin"
    x = x.astype(np.int32) if x.dtype.kind in "iu" else x.astype(np.float32)
    raw.write_bytes(x.astype(x.dtype.newbyteorder("<")).tobytes())
    return path, raw


def _egru2c_config(model_path: Path, out_dir: Path) -> Path:
    config = out_dir / f"{model_path.stem}_config.h"
    _run([sys.executable, EGRU2C, model_path, out_dir / "model.h", "--config", config])
    return config


def _build_driver(out: Path, config: Path | None, flags=HOST_FLAGS) -> Path:
    include = ["-include", str(config)] if config else []
    cmd = [_tool("cc"), *STRICT, *flags, *include, "-I", EXT / "include", "-I", EXT / "src"]
    _run([*cmd, *SOURCES, DRIVER, "-lm", "-o", out])
    return out


def _driver_run(driver: Path, model: Path, raw: Path, batch: int, steps: int, flags=0):
    """(init status, forward status or None, output bits)."""
    lines = _run([driver, "run", model, raw, batch, steps, flags]).split()
    init = int(lines[1])
    if init != EGRU_OK:
        return init, None, []
    if lines[2] == "forward":
        return init, int(lines[3]), []
    return init, EGRU_OK, lines[4:]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("firmware_config")


@pytest.fixture(scope="module")
def full_driver(work):
    return _build_driver(work / "driver_full", None)


@pytest.fixture(scope="module")
def configured(work):
    """case -> (model path, config header, configured driver), built once per case."""
    built = {}

    def get(case: str, batch: int, steps: int):
        if case not in built:
            d = work / case
            d.mkdir()
            model, raw = _write_case(d, case, batch, steps)
            config = _egru2c_config(model, d)
            built[case] = (model, raw, config, _build_driver(d / "driver", config))
        return built[case]

    return get


def _options(config: Path) -> dict[str, int]:
    text = config.read_text()
    return {k: int(v) for k, v in re.findall(r"#define EGRU_CFG_(\w+) ([01])\b", text)}


@pytest.mark.parametrize("case,batch,steps", EQUAL_CASES)
def test_configured_build_gives_the_full_builds_outputs_bit_for_bit(
    case, batch, steps, configured, full_driver
):
    model, raw, config, driver = configured(case, batch, steps)
    full = _driver_run(full_driver, model, raw, batch, steps)
    mine = _driver_run(driver, model, raw, batch, steps)
    assert full[:2] == (EGRU_OK, EGRU_OK), full
    assert mine[:2] == (EGRU_OK, EGRU_OK), mine
    assert len(full[2]) > 0 and mine[2] == full[2]
    # The configuration leaves something out (the services always; most ops).
    options = _options(config)
    assert options["CRC_TABLE"] == 0 and options["STATUS_STRINGS"] == 0
    assert sum(options.values()) < len(options) // 2


def test_egru2c_config_names_exactly_what_the_model_uses(configured):
    """Expected values written from the model's definition in tests/ir_models.py."""
    _, _, config, _ = configured("tokens_gru_sigmoid_reset_after", 3, 7)
    options = _options(config)
    on = {name for name, value in options.items() if value}
    assert on == {
        "OP_EMBEDDING",
        "OP_GRU",
        "OP_DENSE",
        "ACT_SIGMOID",
        "ACT_TANH",
        "GRU_RESET_AFTER",
        "KERNELS_CORTEX_M",  # the one kernel set a firmware links
        "FLOAT",  # a float32 model: the float runtime (int16x8 models get INT16X8 instead)
    }
    _, _, config, _ = configured("mask_zero_bidir_sequences", 5, 6)
    on = {name for name, value in _options(config).items() if value}
    assert on == {"OP_EMBEDDING", "OP_GRU", "ACT_SIGMOID", "ACT_TANH", "GRU_RESET_AFTER"} | {
        "MASK",
        "BIDIRECTIONAL",
        "KERNELS_CORTEX_M",
        "FLOAT",
    }
    # Every option of egru_features.h is set, nothing else (CM_S8_FAST, a speed/size choice,
    # defaults to 0 there).
    declared = set(re.findall(r"#define EGRU_CFG_(\w+) [01]", FEATURES_H.read_text()))
    assert set(options) == declared
    assert "for mask_zero_bidir_sequences.egru" in config.read_text()


# (model needing a left-out feature, its build, the configuration of which case to test it on)
REFUSED = [
    ("lstm", None, "tokens_gru_sigmoid_reset_after"),  # an op (LSTM, softmax) left out
    ("mask_zero_gru", None, "tokens_gru_sigmoid_reset_after"),  # only the mask differs
    ("tokens_gru_sigmoid_reset_before", None, "tokens_gru_sigmoid_reset_after"),  # reset mode
    ("tokens_gru_sigmoid_reset_after", "int8", "tokens_gru_sigmoid_reset_after"),  # int8
    ("gru_hard_sigmoid_relu", None, "features_gru_softmax_reset_before"),  # activations, mode
    ("bidir_gru_concat_last", None, "features_gru_softmax_reset_before"),  # Bidirectional (+mode)
    ("gru_go_backwards_last", None, "features_gru_softmax_reset_before"),  # go_backwards only
]


@pytest.mark.parametrize("case,quantize,config_case", REFUSED)
def test_a_model_needing_a_left_out_feature_is_refused(
    case, quantize, config_case, configured, full_driver, work, tmp_path
):
    sizes = dict((c, (b, s)) for c, b, s in EQUAL_CASES)
    _, _, _, driver = configured(config_case, *sizes[config_case])
    model, raw = _write_case(tmp_path, case, 2, 4, quantize=quantize)
    assert _driver_run(full_driver, model, raw, 2, 4)[:2] == (EGRU_OK, EGRU_OK)
    assert _driver_run(driver, model, raw, 2, 4)[0] == EGRU_ERR_UNSUPPORTED
    assert _driver_run(driver, model, raw, 2, 4, EGRU_INIT_TRUSTED_PAYLOAD)[0] == (
        EGRU_ERR_UNSUPPORTED
    )


def test_crc_without_its_table_equals_zlib(configured, tmp_path):
    _, _, config, driver = configured("tokens_gru_sigmoid_reset_after", 3, 7)
    assert _options(config)["CRC_TABLE"] == 0
    rng = np.random.default_rng(0)
    for size in (0, 1, 9, 1000, 65537):
        data = b"123456789" if size == 9 else rng.integers(0, 256, size, np.uint8).tobytes()
        path = tmp_path / f"data{size}"
        path.write_bytes(data)
        assert int(_run([driver, "crc", path]), 16) == zlib.crc32(data)


def test_trusted_init_skips_only_the_payload_checks(full_driver, tmp_path):
    """A NaN weight passes a trusted init (the payload's values are not scanned, its CRC not
    checked) and is refused by a normal one; a broken header CRC is refused by both."""
    model, raw = _write_case(tmp_path, "tokens_gru_sigmoid_reset_after", 2, 4)
    blob = bytearray(model.read_bytes())
    header = fmt.read_header(bytes(blob))
    at = header["data_offset"]
    blob[at : at + 4] = np.float32(np.nan).tobytes()
    bad_payload = tmp_path / "nan.egru"
    bad_payload.write_bytes(bytes(blob))
    assert _driver_run(full_driver, bad_payload, raw, 2, 4)[0] != EGRU_OK
    assert _driver_run(full_driver, bad_payload, raw, 2, 4, EGRU_INIT_TRUSTED_PAYLOAD)[:2] == (
        EGRU_OK,
        EGRU_OK,
    )
    blob[30] ^= 0x01  # layer_record_size: the header CRC no longer matches
    bad_header = tmp_path / "header.egru"
    bad_header.write_bytes(bytes(blob))
    assert _driver_run(full_driver, bad_header, raw, 2, 4, EGRU_INIT_TRUSTED_PAYLOAD)[0] != 0
    assert _driver_run(full_driver, model, raw, 2, 4, 0x2)[0] == EGRU_ERR_UNSUPPORTED


def test_trusted_init_of_a_corrupted_payload_stays_in_bounds(work):
    """Random bytes of the payload (tables and weights) replaced, the header CRC still valid:
    a trusted init skips the payload CRC, so the structural checks alone must reject what would
    read out of bounds. Under ASan + UBSan any such read or undefined operation aborts."""
    d = work / "asan"
    d.mkdir()
    driver = _build_driver(d / "driver_asan", None, ASAN_FLAGS)
    for case, batch, steps in [
        ("tokens_gru_sigmoid_reset_after", 2, 5),
        ("affine_layernorm", 2, 4),
    ]:
        for quantize in (None, "int8") if case.startswith("tokens") else (None,):
            model, raw = _write_case(d, case, batch, steps, quantize=quantize)
            out = _run([driver, "trusted-fuzz", model, raw, batch, steps, 3000])
            accepted, rejected, ran = map(int, re.findall(r"\d+", out))
            assert accepted + rejected == 3000 and rejected > 0 and ran > 0, out


def test_configured_library_is_smaller_on_cortex_m4(configured, tmp_path):
    """Unlinked .text of the whole library for a Cortex-M4F, full against egru2c's configuration
    of a GRU + Dense model (the linked image's size is tests/test_cortex_m.py's)."""
    cc, size = _tool("arm-none-eabi-gcc"), _tool("arm-none-eabi-size")
    _, _, config, _ = configured("features_gru_softmax_reset_before", 2, 6)

    def text(include: list[str], name: str) -> int:
        out = tmp_path / name
        out.mkdir()
        objs = []
        for i, src in enumerate(SOURCES):
            obj = out / f"{i}.o"
            flags = [*STRICT, *CORTEX_M4, *include, "-I", EXT / "include", "-I", EXT / "src"]
            _run([cc, *flags, "-c", src, "-o", obj])
            objs.append(obj)
        total = _run([size, "-t", *objs]).strip().splitlines()[-1]
        return int(total.split()[0])

    full = text([], "full")
    small = text(["-include", str(config)], "configured")
    print(f"Cortex-M4 library .text: full {full} bytes, GRU + Dense configuration {small} bytes")
    assert small <= full - MIN_M4_TEXT_SAVED


# LayerNorm runs in float (no double on a single-precision FPU): against float64 numpy, within
# about one float ulp of the normalised values (|y| <= ~4.5, ulp 4.8e-7); measured max 6.7e-7
# over these shapes, offsets included.
LAYERNORM_F32_TOL = 1.5e-6


@pytest.mark.parametrize("n", [5, 64, 256])
@pytest.mark.parametrize("mean,std", [(0.0, 1.0), (1e3, 1e-2), (-5e4, 1.0), (0.0, 1e-3)])
def test_layer_norm_in_float_matches_float64(n, mean, std):
    import edgegru
    from edgegru import ir

    eps = 1e-6
    model = ir.Model(ir.InputSpec(ir.FEATURES, n), [ir.LayerNorm(np.ones(n), np.zeros(n), eps)])
    x = (mean + std * np.random.default_rng(n).normal(size=(4, 20, n))).astype(np.float32)
    x64 = x.astype(np.float64)
    mu = x64.mean(-1, keepdims=True)
    want = (x64 - mu) / np.sqrt(((x64 - mu) ** 2).mean(-1, keepdims=True) + eps)
    got = edgegru.load(fmt.write(model)).predict(x)
    assert np.abs(got - want).max() <= LAYERNORM_F32_TOL
