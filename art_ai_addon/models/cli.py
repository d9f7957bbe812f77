"""`models` sub-command: list, import, verify, download and remove model weights."""

from __future__ import annotations

import sys


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list, import, verify, download or remove model weights",
                       description="Manage the model store (weights for the CNN methods).")
    msub = p.add_subparsers(dest="action", metavar="{list,import,verify,download,remove}", required=True)
    store_help = "model store folder (default: $ART_AI_MODELS or ~/.cache/art_ai/models)"
    q = msub.add_parser("list", help="table of every known model and whether it is installed",
                        description="Show every registry model and every model in the store.")
    q.add_argument("--models-dir", help=store_help)
    q = msub.add_parser("import", help="copy a local weights file into the store",
                        description="Copy a local file into the store after checking its checksum (registry "
                                    "models) and its key/shape layout (every model).")
    q.add_argument("file")
    q.add_argument("--as", dest="name", help="registry name to store it under (or a name for your own model)")
    q.add_argument("--architecture", help="layout of your own model when it cannot be detected")
    q.add_argument("--trained-on", default="", help="what your own model was trained on (kept in its sidecar)")
    q.add_argument("--models-dir", help=store_help)
    q = msub.add_parser("verify", help="re-hash every file in the store",
                        description="Re-hash every file in the store; exit 1 if any is corrupt.")
    q.add_argument("--models-dir", help=store_help)
    q = msub.add_parser("download", help="download a registry model (needs --allow-download)",
                        description="Download a registry model; resumable, checksum checked before it is used.")
    q.add_argument("name")
    q.add_argument("--allow-download", action="store_true", help="allow network access for this download")
    q.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the server (default 30)")
    q.add_argument("--models-dir", help=store_help)
    q = msub.add_parser("remove", help="delete a model from the store",
                        description="Delete a model's file and its sidecar from the store.")
    q.add_argument("name")
    q.add_argument("--models-dir", help=store_help)
    p.set_defaults(func=run)


def short_licence(text: str) -> str:
    """The licence name without its notes, for tables."""
    return text.split(" (")[0].split(";")[0].strip()


def format_table(rows: list[dict]) -> str:
    from .store import format_size

    header = ("NAME", "TASK", "SIZE", "LICENCE", "INSTALLED")
    lines = [header]
    for r in rows:
        installed = "yes" if r["installed"] else "no"
        lines.append((r["name"], r["task"], format_size(r["size"], r["size_exact"]), short_licence(r["licence"]),
                      installed))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def run(args, progress) -> int:
    from . import store_root, store

    mdir = getattr(args, "models_dir", None)
    if args.action == "list":
        print(f"model store: {store_root(mdir)}", file=sys.stderr)
        print(format_table(store.list_models(mdir)))
        return 0
    if args.action == "import":
        path, notes = store.import_model(args.file, args.name, architecture=args.architecture,
                                         trained_on=args.trained_on, models_dir_=mdir, progress=progress)
        for note in notes:
            print(f"art_ai: {note}", file=sys.stderr)
        print(str(path))
        return 0
    if args.action == "verify":
        results = store.verify_store(mdir, progress=progress)
        bad = 0
        for r in results:
            print(f"{r['status']:<10} {r['file']}  {r['detail']}")
            bad += r["status"] in ("corrupt", "missing", "broken")
        if not results:
            print(f"art_ai: the model store {store_root(mdir)} is empty", file=sys.stderr)
        if bad:
            print(f"art_ai: error: {bad} file(s) in {store_root(mdir)} are corrupt, missing or broken; they will not "
                  "be used; download or import them again", file=sys.stderr)
            return 1
        return 0
    if args.action == "download":
        from .download import download

        print(str(download(args.name, allow=args.allow_download, models_dir_=mdir, progress=progress,
                           timeout=args.timeout)))
        return 0
    if args.action == "remove":
        for p in store.remove_model(args.name, mdir):
            print(f"art_ai: removed {p}", file=sys.stderr)
        return 0
    return 2
