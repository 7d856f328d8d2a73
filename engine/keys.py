"""CURVE key pairs: ``python -m engine keys ...``.

  generate DIR NAME [NAME ...]   write DIR/NAME.key (public) and DIR/NAME.key_secret
  init --config venue.toml       create every key file the config names that is
                                 missing (server, accounts, operators)
  show FILE                      print the Z85 public key of a key file

Files are pyzmq certificate files (``zmq.auth.create_certificates``). Secret
files are created mode 0600 and each key directory gets a .gitignore that keeps
``*.key_secret`` out of git.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from pathlib import Path

import zmq.auth


def generate(directory: Path, name: str) -> tuple[Path, Path]:
    """Create one key pair as DIR/NAME.key and DIR/NAME.key_secret (refuses to overwrite)."""
    directory.mkdir(parents=True, exist_ok=True)
    public, secret = directory / f"{name}.key", directory / f"{name}.key_secret"
    for path in (public, secret):
        if path.exists():
            raise FileExistsError(f"{path} exists; not overwriting a key")
    ignore = directory / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# secret CURVE keys never go into git\n*.key_secret\n")
    public_file, secret_file = zmq.auth.create_certificates(str(directory), name)
    os.chmod(secret_file, 0o600)
    return Path(public_file), Path(secret_file)


def init_from_config(config_path: Path) -> list[Path]:
    """Generate every key file the config refers to that does not exist yet.

    Reads the raw TOML (loading the full config needs the keys to exist)."""
    with open(config_path, "rb") as f:
        raw = tomllib.load(f)
    base = config_path.resolve().parent
    wanted = []
    server = raw.get("server", {}).get("secret_key_file")
    if server:
        wanted.append(server)
    for section in ("accounts", "operators"):
        for entry in raw.get(section, []):
            wanted.extend(entry.get("key_files", []))
    created = []
    for name in wanted:
        path = base / name
        stem = path.name.removesuffix(".key_secret").removesuffix(".key")
        if (path.parent / f"{stem}.key").exists() or path.exists():
            continue
        created.extend(generate(path.parent, stem))
    return created


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m engine keys", description="CURVE key pairs")
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="generate key pairs")
    gen.add_argument("directory", type=Path)
    gen.add_argument("names", nargs="+")
    init = commands.add_parser("init", help="create the key files a config names")
    init.add_argument("--config", type=Path, required=True)
    show = commands.add_parser("show", help="print a key file's public key")
    show.add_argument("file", type=Path)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "generate":
            for name in args.names:
                public, secret = generate(args.directory, name)
                print(f"{public}  {secret}")
        elif args.command == "init":
            for path in init_from_config(args.config):
                print(f"created {path}")
        else:
            public, _secret = zmq.auth.load_certificate(args.file)
            print(public.decode())
    except (OSError, ValueError, tomllib.TOMLDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
