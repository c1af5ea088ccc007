"""The `edgegru` command: convert, validate, info, demo. Parsing only; the work is done by the
same functions the Python API exposes."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _cmd_convert(args) -> int:
    from .convert import convert

    egru_path = args.output or os.path.splitext(args.model)[0] + ".egru"
    m = convert(args.model, egru_path, onnx_path=args.onnx, quantize=args.quantize)
    size = os.path.getsize(egru_path)
    kind = "int8 weights" if args.quantize else "float32"
    print(f"wrote {egru_path} ({size} bytes, {len(m.layers)} layers, {kind})")
    if args.onnx:
        print(f"wrote {args.onnx} ({os.path.getsize(args.onnx)} bytes)")
    return 0


def _cmd_validate(args) -> int:
    from .validate import KERAS_FP32, AccuracyReport, validate

    x = np.load(args.x) if args.x else None
    y = np.load(args.y) if args.y else None
    if y is not None and (x is None or y.shape[:1] != x.shape[:1]):
        given = "no --x" if x is None else f"--x has {x.shape[:1]} rows"
        print(
            f"edgegru validate: error: --y needs one label per row of --x ({given}, "
            f"--y has shape {y.shape})",
            file=sys.stderr,
        )
        return 2
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
            batch=args.batch,
            seq_len=args.seq_len,
            seed=args.seed,
        )
        int8_out = None
        if y is not None:  # the same model with int8 weights (docs/quantization.md)
            from .convert import convert
            from .runtime import load

            int8_path = os.path.join(tmp, "model-int8.egru")
            convert(args.model, int8_path, quantize="int8")
            int8_out = load(int8_path).predict(x)
    print(report)
    if y is not None:
        # One row per variant, Keras first.
        rows = {
            KERAS_FP32: report.outputs["keras"],
            "edgegru fp32": report.outputs["edgegru"],
            "edgegru int8": int8_out,
        }
        try:
            accuracy = AccuracyReport.from_outputs(rows, y)
        except ValueError as exc:
            print(f"edgegru validate: error: --y: {exc}", file=sys.stderr)
            return 2
        print()
        print(accuracy)
    return 0 if report.ok else 1


def _cmd_info(args) -> int:
    from .format import layer_storage
    from .runtime import load

    m = load(args.egru)
    t = args.seq_len
    print(f"{args.egru}: format {m.metadata.get('producer', '?')}, {m.file_size} bytes")
    print(
        f"input:  {m.input_kind}, "
        + (
            f"vocabulary {m.input_dim}, shape (batch, T)"
            if m.input_kind == "tokens"
            else f"shape (batch, T, {m.input_dim})"
        )
    )
    print(f"output: shape {m.output_shape('batch', 'T')}")
    print(
        f"{'#':>2}  {'layer':<20}{'op':<10}{'in':>7}{'out':>7}  {'activation':<18}"
        f"{'params':>10}{'MACs/step':>11}  {'weights':<10}{'bytes':>10}"
    )
    total_macs = 0
    with open(args.egru, "rb") as f:
        storage = layer_storage(f.read())
    for k, layer in enumerate(m.layers()):
        act = layer["activation"]
        if layer["op"] == "GRU":
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
    print(f"arena: {m.arena_size(1, t)} bytes for batch 1, T={t} (C runtime scratch)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgegru", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("convert", help="convert a Keras model (.keras) to .egru (and ONNX)")
    c.add_argument("model", help="path to a .keras file")
    c.add_argument("-o", "--output", help="the .egru file to write (default: MODEL.egru)")
    c.add_argument("--onnx", help="also export an ONNX graph (fused GRU op) to this path")
    c.add_argument(
        "--quantize",
        choices=["int8"],
        help="store the weight matrices as int8 with one scale per row (docs/quantization.md)",
    )
    c.set_defaults(func=_cmd_convert)

    v = sub.add_parser(
        "validate",
        help="compare Keras, onnxruntime and edgegru on one input (and accuracy, given labels)",
    )
    v.add_argument("model", help="path to the .keras file the .egru was converted from")
    v.add_argument(
        "egru", nargs="?", help="the converted .egru file (default: convert MODEL to a temp file)"
    )
    v.add_argument("--onnx", help="the exported ONNX file (default: export one in memory)")
    v.add_argument("--x", help="input as a .npy file (default: generated to fit the model)")
    v.add_argument(
        "--y",
        help="labels of --x as a .npy file (class ids, one per row): also print the task "
        "accuracy of Keras fp32, edgegru fp32 and edgegru int8 (the model converted with "
        "--quantize int8); argmax of several outputs, > 0.5 of one",
    )
    v.add_argument("--batch", type=int, default=8, help="batch of the generated input")
    v.add_argument("--seq-len", type=int, default=None, help="T of the generated input")
    v.add_argument("--seed", type=int, default=0, help="seed of the generated input")
    v.set_defaults(func=_cmd_validate)

    i = sub.add_parser("info", help="describe an .egru file: layers, sizes, MACs, arena")
    i.add_argument("egru")
    i.add_argument("--seq-len", type=int, default=100, help="T for the arena size (default 100)")
    i.set_defaults(func=_cmd_info)

    # Listed for --help only: main() hands `demo ...` to the demo's own parser.
    sub.add_parser("demo", help="train, convert, validate and time a language-ID GRU")
    return p


def main(argv=None) -> int:
    """Entry point of the `edgegru` command. Returns the exit status."""
    _quiet_tensorflow()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:
        from .demo import main as demo_main

        return demo_main(argv[1:])
    args = build_parser().parse_args(argv)
    from .errors import EdgeGRUError

    try:
        return args.func(args)
    except (EdgeGRUError, ImportError, OSError) as exc:
        print(f"edgegru {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
