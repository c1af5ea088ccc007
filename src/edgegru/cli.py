"""The `edgegru` command: convert, validate, info, demo.

Parsing only; the work is done by the same functions the Python API exposes. Exit status: 0 on
success (validate: every pair within its tolerance), 1 when validate finds a tolerance broken, 2
for a usage or input error, reported as one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

#: One line for `edgegru --help` (the module docstring goes on about exit codes).
DESCRIPTION = (
    "Convert Keras GRU/LSTM/SimpleRNN models to .egru (and ONNX), validate them against Keras "
    "and onnxruntime, describe .egru files, run the demo. Exit status: 0 ok, 1 validation "
    "failed, 2 usage or input error."
)
#: Exit status of a usage or input error (argparse's own code for usage errors).
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: "edgegru validate: error: ... (see --help)"."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _int_at_least(low: int):
    """An argparse type: an integer >= low."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text}")
        return value

    return parse


_positive_int = _int_at_least(1)
_natural_int = _int_at_least(0)


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}") from None
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _quiet_tensorflow() -> None:
    """TensorFlow's C++ logging (oneDNN notices, absl's pre-init warning) off before it loads.
    On CPUs where TensorFlow uses its oneDNN kernels (AVX-512 machines) it prints their notice
    before its log level applies; TF_ENABLE_ONEDNN_OPTS=0 (its documented switch, unless the
    user set it) keeps it quiet and gives the Keras reference TensorFlow's default kernels."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


class _UsageError(Exception):
    """A command-line argument that does not fit (exit 2, one line)."""


def _load_npy(option: str, path: str) -> np.ndarray:
    """--x / --y: a .npy file holding a plain numeric array."""
    if not os.path.isfile(path):
        raise _UsageError(f"{option}: no such file {path!r}")
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise _UsageError(f"{option}: {path!r} is not a readable .npy array ({exc})") from None
    if not isinstance(a, np.ndarray):  # an .npz archive
        raise _UsageError(f"{option}: {path!r} holds several arrays; give one .npy array")
    if a.dtype.kind not in "biuf":
        raise _UsageError(f"{option}: {path!r} holds dtype {a.dtype}, expected numbers")
    return a


def _load_x(path: str):
    """--x: one .npy array, or an .npz archive with one array per model input name (a graph
    model's inputs; a one-input model may use either)."""
    if path.endswith(".npz"):
        from .errors import InputError
        from .validate import read_inputs_npz

        try:
            return read_inputs_npz(path)
        except InputError as exc:
            raise _UsageError(f"--x: {exc}") from None
    return _load_npy("--x", path)


def _cmd_convert(args) -> int:
    from .convert import convert

    egru_path = args.output or os.path.splitext(args.model)[0] + ".egru"
    calibration = None
    if args.calibration is not None:
        if args.quantize != "int16x8":
            raise _UsageError("--calibration fixes int16x8 ranges: use it with --quantize int16x8")
        calibration = _load_npy("--calibration", args.calibration)
    m = convert(
        args.model, egru_path, onnx_path=args.onnx, quantize=args.quantize, calibration=calibration
    )
    size = os.path.getsize(egru_path)
    kind = {
        None: "float32",
        "int8": "int8 weights",
        "int16x8": "int16x8, integer-only"
        + (", calibrated on --calibration" if calibration is not None else ", default calibration"),
    }[args.quantize]
    parts = f"{len(m.nodes)} nodes, graph" if hasattr(m, "nodes") else f"{len(m.layers)} layers"
    print(f"wrote {egru_path} ({size} bytes, {parts}, {kind})")
    if args.onnx:
        print(f"wrote {args.onnx} ({os.path.getsize(args.onnx)} bytes)")
    return 0


def _cmd_validate(args) -> int:
    from .validate import KERAS_FP32, AccuracyReport, validate

    x = _load_x(args.x) if args.x else None
    y = _load_npy("--y", args.y) if args.y else None
    if y is not None and isinstance(x, dict):
        if len(x) != 1:
            raise _UsageError("--y (accuracy) is for one-input, one-output models")
        x = next(iter(x.values()))
    if y is not None and (x is None or y.shape[:1] != x.shape[:1]):
        given = "no --x" if x is None else f"--x has {x.shape[:1]} rows"
        raise _UsageError(f"--y needs one label per row of --x ({given}, --y has shape {y.shape})")
    if x is not None and (args.seq_len is not None or args.batch is not None):
        raise _UsageError("--batch and --seq-len shape a generated input; not with --x")
    with tempfile.TemporaryDirectory(prefix="edgegru-validate-") as tmp:
        egru_path = args.egru
        if egru_path is None:
            from .convert import convert

            egru_path = os.path.join(tmp, "model.egru")
            convert(args.model, egru_path)
        report = validate(
            args.model,
            egru_path,
            onnx_path=args.onnx,
            x=x,
            batch=args.batch if args.batch is not None else 8,
            seq_len=args.seq_len,
            seed=args.seed,
            tolerance=args.tolerance,
        )
        if y is not None and isinstance(report.outputs.get("keras"), list):
            raise _UsageError("--y (accuracy) is for chain models (one input, one output)")
        int8_out = int16x8_out = fp32_out = None
        if y is not None:  # the same model with int8 weights, and int16x8 (docs/quantization.md)
            import warnings

            from .convert import convert
            from .errors import UnsupportedError
            from .runtime import load

            if report.quantized:  # the given file is quantized: the fp32 row from a conversion
                fp32_path = os.path.join(tmp, "model-fp32.egru")
                convert(args.model, fp32_path)
                fp32_out = load(fp32_path).predict(x)
            int8_path = os.path.join(tmp, "model-int8.egru")
            convert(args.model, int8_path, quantize="int8")
            int8_out = load(int8_path).predict(x)
            q16_path = os.path.join(tmp, "model-int16x8.egru")
            cal = _load_npy("--calibration", args.calibration) if args.calibration else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # said below, in the row's name
                try:
                    convert(args.model, q16_path, quantize="int16x8", calibration=cal)
                    int16x8_out = load(q16_path).predict(x)
                except UnsupportedError as exc:
                    print(f"edgegru int16x8: not convertible ({exc})")
    if y is not None:
        # One row per variant, Keras first.
        rows = {
            KERAS_FP32: report.outputs["keras"],
            "edgegru fp32": fp32_out if fp32_out is not None else report.outputs["edgegru"],
            "edgegru int8": int8_out,
        }
        if int16x8_out is not None:
            rows["edgegru int16x8" + ("" if args.calibration else " (default calibration)")] = (
                int16x8_out
            )
        try:
            accuracy = AccuracyReport.from_outputs(rows, y)
        except ValueError as exc:
            raise _UsageError(f"--y: {exc}") from None
    print(report)
    if y is not None:
        print()
        print(accuracy)
    return 0 if report.ok else 1


def _shape_text(dims) -> str:
    """(batch, T, 3) -> "(batch, T, 3)": names and numbers, no quotes."""
    return "(" + ", ".join(str(d) for d in dims) + ")"


def _cmd_info(args) -> int:
    from .format import layer_storage, read_header
    from .runtime import load

    with open(args.egru, "rb") as f:
        blob = f.read()
    m = load(blob, fold_embedding=False)  # the file as stored (and as the C API plans it)
    header = read_header(blob)
    if m.is_graph:
        return _graph_info(args, blob, m, header)
    fixed = m.fixed_seq_len
    lo, hi = m.seq_len_range
    t = args.seq_len if args.seq_len is not None else (fixed or max(lo, DEFAULT_INFO_SEQ_LEN))
    # Everything that can fail comes before the first line of output.
    arena = m.arena_size(1, t)
    arena_min = m.arena_size(1, t, minimal=True)
    storage = layer_storage(blob)
    layers = m.layers()
    if m.output_is_sequence:
        steps = m.output_shape(1, t)[1]
        out = (
            _shape_text(("batch", "T", m.output_dim))
            if steps == t
            else f"{_shape_text(('batch', 'T_out', m.output_dim))}, T_out = {steps} for T = {t}"
        )
    else:
        out = _shape_text(("batch", m.output_dim))
    producer = m.metadata.get("producer", "unknown")
    quant = {0: "", 1: ", int8", 2: ", int16x8 integer-only"}.get(header["quant_version"], "")
    print(
        f"{args.egru}: .egru format {header['version_major']}.{header['version_minor']}"
        + (f"{quant} (quant_version {header['quant_version']})" if header["quant_version"] else "")
        + f", written by {producer}, {m.file_size} bytes"
    )
    if fixed is not None:
        need = f"exactly T = {fixed}" if hi == lo else f"T = {lo} .. {hi}"
        steps_text = f"{need} (the model has a Flatten)"
    elif lo > 1:
        steps_text = f"T >= {lo}"
    else:
        steps_text = "any T >= 1"
    width = (
        f"vocabulary {m.input_dim}, shape (batch, T)"
        if m.input_kind == "tokens"
        else f"shape {_shape_text(('batch', 'T', m.input_dim))}"
    )
    print(f"input:  {m.input_kind}, {width}; {steps_text}")
    print(f"output: shape {out}")
    print(
        f"{'#':>2}  {'layer':<20}{'op':<10}{'in':>7}{'out':>7}  {'activation':<18}"
        f"{'params':>10}{'MACs/step':>11}  {'weights':<10}{'bytes':>10}"
    )
    total_macs = 0
    for k, layer in enumerate(layers):
        act = layer["activation"]
        if layer["op"] in ("GRU", "LSTM"):
            act = f"{layer['recurrent_activation']}/{act}"
        elif layer["op"] == "Embedding":
            act = "-"
        total_macs += layer["macs_per_step"]
        print(
            f"{k:>2}  {layer['name'][:19]:<20}{layer['op']:<10}{layer['input_dim']:>7}"
            f"{layer['output_dim']:>7}  {act:<18}{layer['param_count']:>10}"
            f"{layer['macs_per_step']:>11}  {'+'.join(storage[k]['dtypes']) or '-':<10}"
            f"{storage[k]['bytes']:>10}"
        )
    print(f"parameters: {m.param_count}   MACs per step: {total_macs}")
    if m.int16x8:
        _print_int16x8_scales(blob, m)
    print(
        f"arena: {arena} bytes for batch 1, T={t} (C runtime scratch, fast plan); "
        f"low-memory plan: {arena_min} bytes"
    )
    return 0


def _graph_info(args, blob: bytes, m, header: dict) -> int:
    """`info` for a graph file: the inputs, the outputs, and per node what it reads and writes
    (value names), its op, widths, parameters and storage; a shared layer says so."""
    from . import format as fmt

    graph, _ = fmt.read(blob)
    t = args.seq_len if args.seq_len is not None else DEFAULT_INFO_SEQ_LEN
    arena = m.arena_size(1, t)
    arena_min = m.arena_size(1, t, minimal=True)
    storage = fmt.layer_storage(blob)
    layers = m.layers()
    quant = {0: "", 1: ", int8"}.get(header["quant_version"], "")
    print(
        f"{args.egru}: .egru format {header['version_major']}.{header['version_minor']} graph"
        f"{quant}, written by {m.metadata.get('producer', 'unknown')}, {m.file_size} bytes"
    )
    shapes = {"tokens": "(batch, T) ids", "features": "(batch, T, {w})", "vector": "(batch, {w})"}
    print(f"inputs ({len(m.inputs)}):")
    for spec in m.inputs:
        shape = shapes[spec.kind].format(w=spec.width)
        extra = f", vocabulary {spec.width}" if spec.kind == "tokens" else ""
        print(f"   {spec.name:<24}{spec.kind:<10}{shape}{extra}")
    print(f"outputs ({len(m.outputs)}):")
    for spec in m.outputs:
        shape = f"(batch, {spec.width})" if spec.kind == "vector" else f"(batch, T, {spec.width})"
        print(f"   {spec.name:<24}{spec.kind:<10}{shape}")
    print(f"{'#':>2}  {'node':<20}{'op':<12}{'params':>9}  {'weights':<10}reads -> writes")
    first_use = {}
    for k, (node, layer) in enumerate(zip(graph.nodes, layers, strict=True)):
        shared = first_use.setdefault(id(node.layer), k)
        note = f"  (shared with node {shared})" if shared != k else ""
        print(
            f"{k:>2}  {layer['name'][:19]:<20}{layer['op']:<12}{layer['param_count']:>9}  "
            f"{'+'.join(storage[k]['dtypes']) or '-':<10}"
            f"{', '.join(node.inputs)} -> {', '.join(node.outputs)}{note}"
        )
    print(f"parameters: {m.param_count}")
    print(
        f"arena: {arena} bytes for batch 1, T={t} on every sequence input (fast plan); "
        f"low-memory plan: {arena_min} bytes"
    )
    return 0


def _print_int16x8_scales(blob: bytes, m) -> None:
    """`info` for an int16x8 file: the calibrated per-tensor scales (each layer's int16 input and
    output; recurrent layers: the state's) and how the file was calibrated."""
    from . import int16x8

    qm = int16x8.from_blob(blob)
    how = m.metadata.get("int16x8", {}).get("calibration", "unknown")
    s_in, s_out = m.scales
    inp = f"{float(s_in):.6g}" if s_in else "- (token ids)"
    print(f"int16x8 scales (real value = scale * int16; calibration: {how}):")
    print(f"   input {inp}   output {float(s_out):.6g}")

    def show(scale, bounded):
        return "Q15 (2^-15, bounded)" if bounded else f"{float(scale):.6g}"

    for k, ((kind, layer, p), (words, _mats)) in enumerate(
        zip(qm.layers, int16x8.layer_qparams(qm), strict=True)
    ):
        s = int16x8._from_bits(words[1])
        if kind == "bidirectional":  # words[4]: the states' format; the merge has its own scale
            state = show(p.state_scale, words[4] == 1)
            merged = "the states'" if layer.merge_mode == "concat" else show(s, False)
            line = f"state scale {state}, {layer.merge_mode} output scale {merged}"
        else:
            what = "state" if kind == "recurrent" else "output"
            line = f"{what} scale {show(s, words[4] == 1)}"
        print(f"{k:>4}  {layer.name[:19]:<20}{line}")


#: T of `info`'s arena line when the model does not fix one and --seq-len is not given.
DEFAULT_INFO_SEQ_LEN = 100


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="edgegru", description=DESCRIPTION)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser(
        "convert",
        help="convert a Keras model (.keras) to .egru (and ONNX)",
        description="Convert a Keras model (.keras) to .egru and, with --onnx, to ONNX. Nothing "
        "is written when the model (or, with --onnx, its ONNX export) is not supported.",
    )
    c.add_argument("model", help="path to a .keras file")
    c.add_argument("-o", "--output", help="the .egru file to write (default: MODEL.egru)")
    c.add_argument("--onnx", help="also export an ONNX graph (fused GRU op) to this path")
    c.add_argument(
        "--quantize",
        choices=["int8", "int16x8"],
        help="int8: the weight matrices as int8 with one scale per row; int16x8: integer-only "
        "inference for cores without an FPU (int8 weights, int16 activations; calibrate it with "
        "--calibration) (docs/quantization.md)",
    )
    c.add_argument(
        "--calibration",
        help="int16x8: representative inputs as a .npy file (token ids (N, T) or features "
        "(N, T, F), e.g. training data) that fix the activation ranges (default: random inputs, "
        "with a warning)",
    )
    c.set_defaults(func=_cmd_convert)

    v = sub.add_parser(
        "validate",
        help="compare Keras, onnxruntime and edgegru on one input (and accuracy, given labels)",
        description="Run one input through Keras, onnxruntime and the .egru file and compare "
        "(NaN equals NaN, an infinity the same-signed infinity). Default bounds: 1e-5 for a "
        "float32 file; for an int8 file 0.1 against the float32 runtimes and 0.05 against an "
        "int8 ONNX export (docs/quantization.md). Exit status 0: every pair within its "
        "tolerance; 1: a tolerance broken; 2: a usage or input error.",
    )
    v.add_argument("model", help="path to the .keras file the .egru was converted from")
    v.add_argument(
        "egru", nargs="?", help="the converted .egru file (default: convert MODEL to a temp file)"
    )
    v.add_argument("--onnx", help="the exported ONNX file (default: export one in memory)")
    v.add_argument(
        "--x",
        help="input as a .npy file, or an .npz with one array per input name (several inputs); "
        "default: generated to fit the model",
    )
    v.add_argument(
        "--y",
        help="labels of --x as a .npy file (class ids, one per row): also print the task "
        "accuracy of Keras fp32, edgegru fp32 and edgegru int8 (the model converted with "
        "--quantize int8); argmax of several outputs, > 0.5 of one",
    )
    v.add_argument(
        "--calibration",
        help="with --y: the inputs (.npy, e.g. training data) the int16x8 row is calibrated on "
        "(default: random inputs)",
    )
    v.add_argument(
        "--tolerance",
        type=_tolerance,
        default=None,
        help="max abs error allowed for every pair (default: the documented bound of each pair, "
        "by the files' precision)",
    )
    v.add_argument(
        "--batch", type=_positive_int, default=None, help="batch of the generated input (8)"
    )
    v.add_argument(
        "--seq-len",
        type=_positive_int,
        default=None,
        help="T of the generated input (default: the model's fixed or declared T, else 50)",
    )
    v.add_argument(
        "--seed", type=_natural_int, default=0, help="seed of the generated input (>= 0)"
    )
    v.set_defaults(func=_cmd_validate)

    i = sub.add_parser(
        "info",
        help="describe an .egru file: layers, sizes, MACs, arena",
        description="Describe an .egru file: format version, producer, input and output, "
        "layers, parameters, MACs per step, and the C runtime's scratch arena for one T.",
    )
    i.add_argument("egru")
    i.add_argument(
        "--seq-len",
        type=_positive_int,
        default=None,
        help=f"T for the arena size (default: the model's fixed T, else {DEFAULT_INFO_SEQ_LEN})",
    )
    i.set_defaults(func=_cmd_info)

    # Listed for --help only: main() hands `demo ...` to the demo's own parser.
    sub.add_parser("demo", help="train, convert, validate and time a language-ID GRU")
    return p


def _error_line(exc: BaseException) -> str:
    """The message of an error as one line."""
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.strerror}: {exc.filename!r}"
    return text or type(exc).__name__


def main(argv=None) -> int:
    """Entry point of the `edgegru` command. Returns the exit status."""
    _quiet_tensorflow()
    argv = list(sys.argv[1:] if argv is None else argv)
    from .errors import EdgeGRUError

    if argv[:1] == ["demo"]:
        from .demo import main as demo_main

        try:
            return demo_main(argv[1:])
        except (EdgeGRUError, ImportError, OSError) as exc:
            print(f"edgegru demo: error: {_error_line(exc)}", file=sys.stderr)
            return EXIT_USAGE
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (EdgeGRUError, ImportError, OSError, _UsageError) as exc:
        print(f"edgegru {args.command}: error: {_error_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError:
        print(
            f"edgegru {args.command}: error: out of memory (a smaller --x, --batch or --seq-len?)",
            file=sys.stderr,
        )
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
