"""Exports an Ultralytics or yolov5 `.pt` checkpoint to the TorchScript file vlmserve loads.

    scripts/export_yolo.sh WEIGHTS.pt [--out FOLDER_OR_FILE] [--imgsz 640]

The checkpoint's own pickle says which package wrote it (classes under `ultralytics.` or yolov5's
`models.yolo`), and that package exports it, with its metadata (class names, stride, image size)
embedded. Nothing is downloaded, a YOLOv5 checkpoint is never swapped for Ultralytics' "v5u"
re-release, and nothing is written beside the checkpoint (which may sit in a read-only folder): the
export runs on a copy in a scratch folder inside the output folder and the result is renamed into
place. Prints the written path on stdout.
"""

import argparse
import contextlib
import io
import os
import pickletools
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "models"

# Ultralytics asks its hub and GitHub for assets unless told it is offline; every input here is local.
os.environ.setdefault("YOLO_OFFLINE", "1")
# yolov5 checkpoints pickle whole modules; torch >= 2.6 refuses that unless weights_only is off, and
# yolov5 7.0.14 calls torch.load without saying.
os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"


class ExportError(Exception):
    """A problem with the user's input or the export, reported as one line without a traceback."""


def prepare_yolov5():
    """Makes the pinned yolov5 package work offline beside the pinned huggingface_hub.

    yolov5 7.0.14 asks the Hugging Face hub for any weights file before looking on disk, through an
    import path that huggingface_hub >= 0.25 (pinned by transformers) no longer has. Our weights are
    local files: skip the hub lookup.
    """
    import yolov5.models.common as common
    import yolov5.utils.downloads as downloads

    for module in (common, downloads):
        module.attempt_download_from_hub = lambda *args, **kwargs: None


def checkpoint_package(weights):
    """'ultralytics' or 'yolov5', read from the class names the checkpoint's pickle refers to."""
    try:
        with zipfile.ZipFile(weights) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") or name == "data.pkl"]
            if not pickles:
                raise ExportError(f"{weights} is a zip file but not a PyTorch checkpoint (no data.pkl inside)")
            data = archive.read(pickles[0])
    except zipfile.BadZipFile:
        raise ExportError(f"{weights} is not a PyTorch checkpoint (not a zip archive)") from None
    strings = []
    try:
        for op, arg, _ in pickletools.genops(data):
            if op.name in ("GLOBAL", "SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
                strings.append(str(arg))
    except Exception as error:  # a truncated or corrupt pickle: pickletools raises ValueError and others
        raise ExportError(f"{weights}: unreadable checkpoint pickle ({error})") from None
    if any(s.startswith("ultralytics") for s in strings):
        return "ultralytics"
    if any(s.startswith(("models.yolo", "models.common")) for s in strings):
        return "yolov5"
    raise ExportError(f"{weights} holds no Ultralytics or yolov5 model (neither package's classes are in it)")


def output_path(weights, out):
    out = Path(out)
    if out.suffix == ".torchscript":
        return out
    return out / (weights.stem + ".torchscript")


def export_yolov5(weights, imgsz):
    prepare_yolov5()
    from yolov5 import export

    export.run(weights=str(weights), include=("torchscript",), imgsz=(imgsz, imgsz), device="cpu")
    return weights.with_suffix(".torchscript")


def export_ultralytics(weights, imgsz):
    from ultralytics import YOLO

    model = YOLO(str(weights))
    if model.task != "detect":
        raise ExportError(f"{weights} is an Ultralytics '{model.task}' model; vlmserve serves detection models only")
    return Path(model.export(format="torchscript", imgsz=imgsz, device="cpu"))


def export(weights, out=DEFAULT_OUT, imgsz=640, quiet=True):
    """Exports `weights` (a .pt) to TorchScript at `out` (a folder, or a path ending in .torchscript)."""
    weights = Path(weights)
    if not weights.is_file():
        raise ExportError(f"{weights}: no such file")
    package = checkpoint_package(weights)
    target = output_path(weights, out)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    except OSError as error:
        raise ExportError(f"cannot write to {target.parent}: {error.strerror}; pass --out with a writable folder") from None
    log = io.StringIO()
    try:
        # The packages write their exports beside the weights they load: give them a copy to write beside.
        copy = scratch / weights.name
        shutil.copyfile(weights, copy)
        exporter = export_yolov5 if package == "yolov5" else export_ultralytics
        streams = (contextlib.redirect_stdout(log), contextlib.redirect_stderr(log)) if quiet else ()
        with contextlib.ExitStack() as stack:
            for stream in streams:
                stack.enter_context(stream)
            try:
                exported = exporter(copy, imgsz)
            except ExportError:
                raise
            except Exception as error:
                raise ExportError(f"{package} could not export {weights}: {type(error).__name__}: {error}") from error
        if not exported.is_file():
            raise ExportError(f"{package} export of {weights} wrote no TorchScript file")
        os.replace(exported, target)
    except ExportError as error:
        if quiet and log.getvalue():
            error.args = (error.args[0] + "\n" + package + " said:\n" + log.getvalue().rstrip(),)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def main():
    parser = argparse.ArgumentParser(description="Export an Ultralytics or yolov5 .pt checkpoint to TorchScript.")
    parser.add_argument("weights", help="the .pt checkpoint (read only; never modified)")
    parser.add_argument("--out", default=str(DEFAULT_OUT),
                        help="output folder, or a file path ending in .torchscript (default: models/ in the repo)")
    parser.add_argument("--imgsz", type=int, default=640, help="square input size baked into the export (default 640)")
    parser.add_argument("--verbose", action="store_true", help="show the exporting package's own output")
    args = parser.parse_args()
    try:
        target = export(args.weights, args.out, args.imgsz, quiet=not args.verbose)
    except ExportError as error:
        print(f"export_yolo: {error}", file=sys.stderr)
        sys.exit(2)
    print(target)


if __name__ == "__main__":
    main()
