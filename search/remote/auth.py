"""The Ray token this process uses: where it comes from, kept readable by its owner only, and
what to say when a cluster refuses it.

Whoever holds the token can run code on the Ray it opens, so a token file readable by other
users of the machine is a door: the product creates it 0600 and tightens a looser one of the
user's wherever it uses one (a local launch, joining a cluster, submitting a job).
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Optional

log = logging.getLogger("resnet_search.launch")

TOKEN_HELP = ("a token cluster needs its token here: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
              "~/.ray/auth_token (copy it from the head node: `ray get-auth-token`)")


def token_source() -> Optional[str]:
    """Where the driver's Ray token comes from (the places Ray reads, in its order), or None."""
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return "RAY_AUTH_TOKEN"
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path:
        return f"RAY_AUTH_TOKEN_PATH ({path})" if Path(path).expanduser().is_file() else None
    default = Path.home() / ".ray" / "auth_token"
    return str(default) if default.is_file() else None


def refused(address: str, source: Optional[str]) -> str:
    """The one line for a cluster that refused this process's token (or its lack of one)."""
    using = f"the token from {source} was refused" if source else "no token was found"
    return f"the Ray cluster at {address} requires token authentication and {using}; {TOKEN_HELP}"


def token_file() -> Optional[Path]:
    """The file Ray takes its token from (Ray's order), or None when the token comes from the
    RAY_AUTH_TOKEN variable."""
    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return None
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    return Path(path).expanduser() if path else Path.home() / ".ray" / "auth_token"


def make_private_token() -> None:
    """Create ~/.ray/auth_token 0600 before a local Ray would create it with the umask's mode
    (0644: readable by every user of the machine, and whoever reads it may run code on that
    Ray). The same token Ray makes: 256 random bits in hex. Only where Ray would make one: token
    auth not switched off, no token given by RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH."""
    if os.environ.get("RAY_AUTH_MODE", "token").strip().lower() != "token":
        return
    if os.environ.get("RAY_AUTH_TOKEN", "").strip() or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return
    path = Path.home() / ".ray" / "auth_token"
    if path.exists():
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another launch made it just now: that one is used
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))


def private_token(path: Optional[Path]) -> None:
    """A token file readable by others is made 0600 when it is ours, saying so (then it is
    never looser again, so this is said once); one we do not own is only reported."""
    if path is None:
        return
    try:
        found = path.stat()
    except OSError:  # none yet: Ray makes it, or says that none was found
        return
    mode = stat.S_IMODE(found.st_mode)
    if not mode & 0o077:
        return
    if found.st_uid == os.geteuid():
        try:
            os.chmod(path, 0o600)
        except OSError as error:
            log.warning("could not make the Ray token file %s private (mode %04o): %s; run "
                        "`chmod 600 %s`", path, mode, error.strerror or error, path)
            return
        log.warning("made the Ray token file %s private: mode %04o -> 0600 (whoever reads it "
                    "can run code on the Ray it opens)", path, mode)
    else:
        log.warning("the Ray token file %s is mode %04o and owned by uid %d, not you: others "
                    "may read it and run code on the Ray it opens; ask its owner to `chmod 600` "
                    "it", path, mode, found.st_uid)
