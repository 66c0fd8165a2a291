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


@pytest.mark.django_db
def test_a_command_skips_the_migration_plan_only_when_every_migration_is_applied():
    """`db.ensure_ready` answers "nothing to migrate" from the files and the recorded
    migrations alone; one file not recorded (a new migration in an upgrade) sends it through
    Django's plan."""
    from django.db.migrations.recorder import MigrationRecorder

    from qifu import db

    assert db._every_migration_applied()
    MigrationRecorder.Migration.objects.filter(app="policies", name="0001_initial").delete()
    assert not db._every_migration_applied()
