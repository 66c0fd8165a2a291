import datetime as dt

from django.db import migrations, models


def given_up(apps, schema_editor):
    """Matches given up before the field existed: the time of the history's line that says so."""
    Match = apps.get_model("policies", "Match")
    found = []
    for m in Match.objects.filter(status="declined", confirmed_at__isnull=False).only("id", "history"):
        line = next((h for h in reversed(m.history or []) if h.get("note", "").startswith("企业放弃其余资金")), None)
        if line is not None:
            m.gave_up_at = dt.datetime.fromisoformat(line["at"])
            found.append(m)
    Match.objects.bulk_update(found, ["gave_up_at"], batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ('policies', '0010_application_returned'),
    ]

    operations = [
        migrations.AddField(
            model_name='match',
            name='gave_up_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='放弃其余资金时间'),
        ),
        migrations.RunPython(given_up, migrations.RunPython.noop),
    ]
