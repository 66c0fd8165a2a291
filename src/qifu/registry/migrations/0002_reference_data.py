"""Load the townships and the industry classification shipped in qifu/data."""

from django.db import migrations


def load(apps, schema_editor):
    from qifu.engine import reference

    Township = apps.get_model("registry", "Township")
    Industry = apps.get_model("registry", "Industry")
    for t in reference.townships():
        Township.objects.update_or_create(
            code=t.code, defaults={"name": t.name, "kind": t.kind, "postcode": t.postcode}
        )
    Industry.objects.bulk_create(
        [Industry(code=c, name=n) for c, n in reference.industries().items()], ignore_conflicts=True
    )


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
