"""Temporary registry auth files: rendered purely, written 0600, always removed."""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from paude.images.refs import RegistryTarget

AUTH_FILE_NAME = "auth.json"


def render_auth_file(target: RegistryTarget) -> str:
    """Return the containers-auth.json(5) text that logs in to ``target``'s host."""
    if target.login is None:
        raise ValueError("the target has no login: the user's own auth file is used")
    pair = f"{target.login.username}:{target.login.password}".encode()
    return json.dumps({"auths": {target.host: {"auth": base64.b64encode(pair).decode()}}})


@contextmanager
def temporary_auth_file(target: RegistryTarget) -> Iterator[str | None]:
    """Yield the path of an auth file for ``target`` (None: use the user's own login).

    The file sits in a fresh directory only we can read (mode 0700, file 0600),
    and both are removed on exit, also when the push fails or is interrupted.
    """
    if target.login is None:
        yield None
        return
    directory = tempfile.mkdtemp(prefix="paude-auth-")
    try:
        path = os.path.join(directory, AUTH_FILE_NAME)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(render_auth_file(target))
        yield path
    finally:
        shutil.rmtree(directory, ignore_errors=True)
