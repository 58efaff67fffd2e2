"""System checks (narrows.checks) and the app config."""

from __future__ import annotations

from django.apps import apps
from django.core.checks import Warning
from django.test import override_settings

from narrows.apps import NarrowsConfig
from narrows.checks import check_app_order, check_asgi_application

BASE_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]


def test_app_config_is_narrows() -> None:
    config = apps.get_app_config("narrows")
    assert isinstance(config, NarrowsConfig)
    assert (config.name, config.label) == ("narrows", "narrows")


@override_settings(ASGI_APPLICATION=None)
def test_missing_asgi_application_is_fine() -> None:
    """runserver then serves Django's views through narrows.asgi, as Django's own runserver
    falls back to its default handler without WSGI_APPLICATION."""
    assert check_asgi_application(None) == []


@override_settings(ASGI_APPLICATION="application")
def test_asgi_application_without_module_is_e001() -> None:
    [error] = check_asgi_application(None)
    assert error.id == "narrows.E001"
    assert "got 'application'" in error.msg


@override_settings(ASGI_APPLICATION="tests.no_such_module.application")
def test_unimportable_module_is_e002_and_says_why() -> None:
    [error] = check_asgi_application(None)
    assert error.id == "narrows.E002"
    assert "'tests.no_such_module.application' could not be imported" in error.msg
    assert "ModuleNotFoundError: No module named 'tests.no_such_module'" in error.msg


@override_settings(ASGI_APPLICATION="tests.asgi.no_such_attribute")
def test_missing_attribute_is_e002() -> None:
    [error] = check_asgi_application(None)
    assert error.id == "narrows.E002"
    assert "no_such_attribute" in error.msg


@override_settings(ASGI_APPLICATION="tests.settings.SECRET_KEY")
def test_non_callable_application_is_e002() -> None:
    [error] = check_asgi_application(None)
    assert error.id == "narrows.E002"
    assert "must be an ASGI application (a callable), got str" in error.msg


@override_settings(ASGI_APPLICATION="tests.asgi.application")
def test_importable_application_passes() -> None:
    assert check_asgi_application(None) == []


def test_narrows_after_staticfiles_is_w001() -> None:
    with override_settings(INSTALLED_APPS=[*BASE_APPS, "django.contrib.staticfiles", "narrows"]):
        [warning] = check_app_order(None)
    assert isinstance(warning, Warning)
    assert warning.id == "narrows.W001"
    assert "staticfiles' WSGI server" in warning.msg
    assert warning.hint == 'Move "narrows" above "django.contrib.staticfiles" in INSTALLED_APPS.'


def test_app_config_path_is_recognised_too() -> None:
    installed = [*BASE_APPS, "django.contrib.staticfiles", "narrows.apps.NarrowsConfig"]
    with override_settings(INSTALLED_APPS=installed):
        [warning] = check_app_order(None)
    assert warning.id == "narrows.W001"


def test_narrows_before_staticfiles_passes() -> None:
    with override_settings(INSTALLED_APPS=["narrows", *BASE_APPS, "django.contrib.staticfiles"]):
        assert check_app_order(None) == []


def test_without_staticfiles_order_does_not_matter() -> None:
    with override_settings(INSTALLED_APPS=[*BASE_APPS, "narrows"]):
        assert check_app_order(None) == []
