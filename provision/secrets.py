"""Resolve secret references ({env}, {file}, {vault}) at the moment of use, never earlier.

A resolved secret is only ever returned to the caller that needs it; it is
not stored on the Site, not logged and not written anywhere by forge.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from provision.errors import InputError
from provision.spec.model import SecretRef


def check_private(path: Path) -> None:
    """Refuse a secret file that group or others can read (0600/0400 expected)."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(f"{path}: secret file is mode {stat.S_IMODE(mode):04o}; "
                         f"it must be readable by its owner only",
                         hint=f"chmod 600 {path}")


def resolve(ref: SecretRef, base_dir: Path | None = None) -> str:
    if ref.kind == "env":
        value = os.environ.get(ref.location)
        if value is None:
            raise InputError(f"secret {ref.describe()}: environment variable {ref.location} "
                             f"is not set")
        return value
    path = Path(ref.location).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.exists():
        raise InputError(f"secret {ref.describe()}: {path} does not exist")
    if ref.kind == "file":
        check_private(path)
        return path.read_text(encoding="utf-8").rstrip("\n")
    return _from_vault(path, ref.key)


def _from_vault(path: Path, key: str | None) -> str:
    """Decrypt an ansible-vault file (password from ANSIBLE_VAULT_PASSWORD_FILE)."""
    import yaml
    from ansible.parsing.vault import VaultLib, VaultSecret

    pw_file = os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
    if not pw_file:
        raise InputError(f"secret vault:{path}: set ANSIBLE_VAULT_PASSWORD_FILE to decrypt it")
    pw_path = Path(pw_file).expanduser()
    check_private(pw_path)
    secret = VaultSecret(pw_path.read_bytes().strip())
    try:
        plain = VaultLib([("default", secret)]).decrypt(path.read_bytes()).decode()
    except Exception as exc:  # ansible raises AnsibleError subclasses with varying types
        raise InputError(f"secret vault:{path}: cannot decrypt ({type(exc).__name__})") from None
    if key is None:
        return plain.rstrip("\n")
    data = yaml.safe_load(plain)
    if not isinstance(data, dict) or key not in data:
        raise InputError(f"secret vault:{path}: no key {key!r} in the vault")
    return str(data[key])
