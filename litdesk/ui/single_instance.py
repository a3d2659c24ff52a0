"""One window for files opened from the desktop: a running litdesk listens on a local socket
(a Unix socket, a named pipe on Windows) and a second ``litdesk --reuse-window FILE`` hands it
its paths and exits, instead of opening a second window.

The socket's name holds the user's name and a digest of litdesk's data folder, so that two
users, or two litdesk homes (``$LITDESK_HOME``), never meet. The message is one line of JSON,
``{"paths": [...]}``, answered ``ok``.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QAbstractSocket, QLocalServer, QLocalSocket

from litdesk.core import paths

#: How long a second instance waits for the running one, in milliseconds.
TIMEOUT_MS = 3_000
_REPLY = b"ok\n"


def server_name() -> str:
    """The socket's name for this user and litdesk home."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (a container)
        user = "user"
    digest = hashlib.blake2b(str(paths.data_dir().resolve()).encode("utf-8"),
                             digest_size=6).hexdigest()
    safe_user = "".join(c if c.isalnum() else "_" for c in user)[:32]
    return f"litdesk-{safe_user}-{digest}"


def send_to_running(paths_to_open: Sequence[Path], timeout_ms: int = TIMEOUT_MS) -> bool:
    """Hand ``paths_to_open`` to the running window; True once it has taken them, False when
    no window listens (or it does not answer in time), so that the caller opens its own."""
    socket = QLocalSocket()
    socket.connectToServer(server_name())
    if not socket.waitForConnected(timeout_ms):
        return False
    message = json.dumps({"paths": [str(path) for path in paths_to_open]}) + "\n"
    socket.write(message.encode("utf-8"))
    if not socket.waitForBytesWritten(timeout_ms):
        return False
    reply = b""
    while not reply.endswith(b"\n") and socket.waitForReadyRead(timeout_ms):
        reply += bytes(socket.readAll())
    socket.disconnectFromServer()
    return reply == _REPLY


class SingleInstanceServer(QObject):
    """Listens for paths from later launches; emits :attr:`paths_received` with them."""

    paths_received = Signal(list)  # list[Path]

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._accept)
        self._buffers: dict[QLocalSocket, bytes] = {}

    @property
    def listening(self) -> bool:
        """Whether this window is the one later launches reach."""
        return self._server.isListening()

    def listen(self) -> bool:
        """Start listening unless another litdesk window already does; a socket left behind by
        a litdesk that crashed is replaced. True when this one listens."""
        name = server_name()
        # Asked first: with access options set, Qt binds elsewhere and renames the socket
        # over an existing one, which would steal it from a live window.
        probe = QLocalSocket()
        probe.connectToServer(name)
        if probe.waitForConnected(500):
            probe.disconnectFromServer()
            return False
        if self._server.listen(name):
            return True
        if self._server.serverError() != QAbstractSocket.SocketError.AddressInUseError:
            return False
        QLocalServer.removeServer(name)
        return self._server.listen(name)

    def close(self) -> None:
        """Stop listening (the window is closing)."""
        self._server.close()

    def _accept(self) -> None:
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            self._buffers[socket] = b""
            socket.readyRead.connect(lambda socket=socket: self._read(socket))
            socket.disconnected.connect(lambda socket=socket: self._drop(socket))

    def _read(self, socket: QLocalSocket) -> None:
        data = self._buffers.get(socket, b"") + bytes(socket.readAll())
        if not data.endswith(b"\n"):
            self._buffers[socket] = data[-1 << 20:]  # a well-formed message is short
            return
        self._buffers[socket] = b""
        try:
            message = json.loads(data.decode("utf-8"))
            received = [Path(str(item)) for item in message["paths"]]
        except (ValueError, KeyError, TypeError):
            socket.disconnectFromServer()
            return
        socket.write(_REPLY)
        socket.flush()
        self.paths_received.emit(received)

    def _drop(self, socket: QLocalSocket) -> None:
        self._buffers.pop(socket, None)
        socket.deleteLater()


def serve(window) -> SingleInstanceServer:
    """Make ``window`` (a MainWindow) the one later launches hand their files to: it comes to
    the front and opens them. The server lives as long as the window."""
    server = SingleInstanceServer(window)

    def take(received: list) -> None:
        if window.isMinimized():
            window.showNormal()
        window.raise_()
        window.activateWindow()
        window.open_paths(received)

    server.paths_received.connect(take)
    server.listen()
    window.single_instance = server
    return server
