"""Faces: other systems' wire protocols served beside ``/v1``, over the same calls.

Each face is one package that parses its system's requests, makes one call through
the key's :class:`~trailvault.workflows.keyview.KeyView` and renders the answer as that
system does. It registers here with one line: its name (the config file's section, such
as ``[oci]``) and the function that builds its :class:`~trailvault.edges.server.routes.Face`
from that section. ``trailvault serve`` mounts every face of :data:`FACES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from trailvault.edges.faces import oci
from trailvault.edges.server.routes import Face

__all__ = ["FACES", "configured_faces"]

#: Face name -> builder of its routes from its config section (defaults filled in by edges/config.py).
FACES: dict[str, Callable[[Mapping[str, Any]], Face]] = {
    "oci": oci.face,
}


def configured_faces(settings: Mapping[str, Any]) -> list[Face]:
    """Every registered face, built from its section of ``settings`` (:func:`~trailvault.edges.config.load_settings`).

    A section that does not make sense (an OCI log mapped to no channel) raises InvalidInput naming it.
    """
    return [build(settings.get(name) or {}) for name, build in FACES.items()]
