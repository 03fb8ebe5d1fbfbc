"""How much one Streamlit session may hold uploaded: files, total bytes, bytes per file.

Streamlit keeps every uploaded file in memory until the session drops it, so the front
reserves an upload's declared size before passing it on and gives it back when the upload
fails or the file is deleted. The event loop runs one handler step at a time, so a reserve
is a check and a booking in one step: parallel uploads cannot overshoot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIB = 1024 * 1024
# Multipart framing around the file (boundaries, part headers); Streamlit allows the same.
FRAMING_BYTES = 64 * 1024


@dataclass
class UploadQuota:
    """Per-session upload bounds; ``held`` maps session id -> file id -> bytes."""

    file_mb: int
    files: int
    session_mb: int
    held: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def largest_body(self) -> int:
        """The largest request body one upload may have."""
        return self.file_mb * MIB + FRAMING_BYTES

    def reserve(self, session: str, file_id: str, size: int) -> str | None:
        """Book ``size`` bytes for a file, or say why not (nothing is booked then)."""
        if size > self.largest_body:
            return f"a file may have at most {self.file_mb} MB (SCENESEEK_MAX_UPLOAD_MB)"
        files = {f: n for f, n in self.held.get(session, {}).items() if f != file_id}
        if len(files) >= self.files:
            return (
                f"this session holds {len(files)} uploaded files already "
                "(SCENESEEK_SESSION_UPLOADS); remove one or reload the page"
            )
        if sum(files.values()) + size > self.session_mb * MIB + FRAMING_BYTES:
            return (
                f"this session may hold {self.session_mb} MB of uploads "
                "(SCENESEEK_SESSION_UPLOAD_MB); remove a file or reload the page"
            )
        self.held[session] = {**files, file_id: size}
        return None

    def release(self, session: str, file_id: str) -> None:
        """Give a file's bytes back (its upload failed, or it was deleted)."""
        files = self.held.get(session, {})
        files.pop(file_id, None)
        if not files:
            self.held.pop(session, None)
