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


@pytest.mark.django_db
def test_messages_stored_before_the_addressee_field_are_addressed_by_their_key_and_purpose():
    import datetime as dt
    import importlib

    from django.apps import apps
    from django.utils import timezone

    from qifu.registry.models import Entity, Township
    from qifu.reminders.models import OutboxMessage

    step = importlib.import_module("qifu.reminders.migrations.0012_outbox_addressee").addressed
    now = timezone.now()
    e = Entity.objects.create(uscc="91330282MA2XXXXX0X", name="测试公司", entity_type="enterprise",
                              town=Township.objects.first(), established_on=dt.date(2020, 1, 1), status="active",
                              imported_at=now)
    for key, purpose in (("request:Q1:dep:3:new:2026-03-02", "request"), ("request:Q1:ent:signed", "request"),
                         ("policy-gave-up:7:dep", "policy"), ("expert:4:confirmed", "expert"), ("filing:sms:x", "filing")):
        OutboxMessage.objects.create(key=key, entity=e, purpose=purpose, channel="sms", recipient="13800000000",
                                     body="b", reason="r", planned_for=now.date(), next_attempt_at=now)
    step(apps, None)
    assert dict(OutboxMessage.objects.values_list("key", "addressee")) == {
        "request:Q1:dep:3:new:2026-03-02": "department", "request:Q1:ent:signed": "entity",
        "policy-gave-up:7:dep": "department", "expert:4:confirmed": "expert", "filing:sms:x": "entity"}



@pytest.mark.django_db
def test_reports_issued_before_orders_kept_their_retention_take_the_labs_period():
    import datetime as dt
    import importlib

    from django.apps import apps
    from django.utils import timezone

    from qifu.labs.models import Lab, SampleOrder
    from qifu.registry.models import Entity, Township

    step = importlib.import_module("qifu.labs.migrations.0012_retain_days").from_the_lab
    now = timezone.now()
    town = Township.objects.first()
    firm = Entity.objects.create(uscc="91330282MA2XXXXX0X", name="测试公司", entity_type="enterprise", town=town,
                                 established_on=dt.date(2020, 1, 1), status="active", imported_at=now)
    lab = Lab.objects.create(code="L1", name="检测中心", owner_kind="public", owner_name="市场监管局", town=town,
                             opens=dt.time(8), closes=dt.time(17), retain_days=21, updated_at=now)

    def order(**kw):
        return SampleOrder.objects.create(lab=lab, entity=firm, town=town, sample_name="样品", samples=1,
                                          items="项目", created_at=now - dt.timedelta(days=9), **kw)

    issued, waiting = order(status="issued", issued_at=now), order()
    retest = order(status="issued", issued_at=now, retest_of=issued)
    step(apps, None)
    got = dict(SampleOrder.objects.values_list("pk", "retain_days"))
    assert got == {issued.pk: 21, waiting.pk: None, retest.pk: None}


@pytest.mark.django_db
def test_listings_stored_before_the_imported_field_are_marked_by_their_number_and_decider():
    import datetime as dt
    import importlib

    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from qifu.abnormal.models import Listing
    from qifu.registry.models import Entity, Township

    step = importlib.import_module("qifu.abnormal.migrations.0008_listing_imported").from_the_national_list
    town = Township.objects.first()
    staff = get_user_model().objects.create_user("decider", password="decider-pw-for-tests")

    def listing(n: int, number: str, by=None):
        firm = Entity.objects.create(uscc=f"91330282MA2XXXX{n}0X", name=f"测试公司{n}", entity_type="enterprise",
                                     town=town, established_on=dt.date(2020, 1, 1), status="active",
                                     imported_at=timezone.now())
        return Listing.objects.create(entity=firm, town=town, report_year=2024, kind="list", reason="未按规定期限公示年度报告",
                                      number=number, listed_on=dt.date(2025, 7, 15), listed_by=by)

    national = listing(1, "市监异列〔2025〕第00001号")
    ours = listing(2, "异列〔2025〕00001号")  # decided in qifu by a command or a test, nobody named
    decided = listing(3, "特别〔2025〕1号", by=staff)
    step(apps, None)
    got = dict(Listing.objects.values_list("pk", "imported"))
    assert got == {national.pk: True, ours.pk: False, decided.pk: False}
