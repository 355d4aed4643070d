"""The Vault API is declared once (VaultAPI); Vault and RemoteVault implement it name by name."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import pytest

from trailvault.workflows.api import VaultAPI
from trailvault.workflows.client import RemoteVault
from trailvault.workflows.vault.vault import Vault

IMPLEMENTATIONS = [Vault, RemoteVault]


def _public(cls: type) -> set[str]:
    return {
        name
        for name, value in inspect.getmembers(cls)
        if not name.startswith("_") and (callable(value) or isinstance(value, property))
    }


def _declared() -> list[str]:
    return sorted(
        name
        for name, value in vars(VaultAPI).items()
        if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, property))
    )


def _function(cls: type, name: str) -> Callable[..., Any]:
    value = inspect.getattr_static(cls, name)
    return value.fget if isinstance(value, property) else value  # type: ignore[no-any-return]


def _owner(cls: type, name: str) -> type:
    return next(klass for klass in cls.__mro__ if name in vars(klass))


def test_the_api_declares_every_method_the_two_share() -> None:
    """Every public method that both Vault and RemoteVault have is declared in VaultAPI, and no more."""
    assert sorted(_public(Vault) & _public(RemoteVault)) == _declared()


@pytest.mark.parametrize("cls", IMPLEMENTATIONS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("name", _declared())
def test_each_method_has_the_declared_signature(cls: type, name: str) -> None:
    """Same parameters, kinds, defaults and annotations as the declaration, and the same overloads."""
    declared, implemented = _function(VaultAPI, name), _function(cls, name)
    assert _owner(cls, name) is not VaultAPI, f"{cls.__name__}.{name} is not implemented"
    assert inspect.signature(implemented) == inspect.signature(declared)
    assert [inspect.signature(f) for f in typing.get_overloads(implemented)] == [
        inspect.signature(f) for f in typing.get_overloads(declared)
    ]


@pytest.mark.parametrize("cls", IMPLEMENTATIONS, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("name", _declared())
def test_each_method_takes_its_contract_from_the_declaration(cls: type, name: str) -> None:
    """The contract is written once: an implementation carries no docstring of its own and shows the API's."""
    assert _function(cls, name).__doc__ is None
    assert inspect.getdoc(getattr(cls, name)) == inspect.getdoc(getattr(VaultAPI, name))
    assert inspect.getdoc(getattr(VaultAPI, name))


def test_every_declared_method_documents_its_contract() -> None:
    """Every method of the API has a docstring saying what it does."""
    assert [name for name in _declared() if not inspect.getdoc(getattr(VaultAPI, name))] == []
