import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_no_missing_migrations():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
def test_reference_data_is_loaded_by_migrations():
    from qifu.registry.models import Industry, Township

    assert Township.objects.count() == 19
    assert Industry.objects.filter(code__regex=r"^[0-9]{2}$").count() == 97
    assert Industry.objects.filter(code__regex=r"^[A-T]$").count() == 20
