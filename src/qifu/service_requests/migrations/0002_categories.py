"""The categories of contract §1.7.1 with their usual departments and default time limits
(engine.requests.categories); a county edits the departments and limits afterwards."""

from django.db import migrations


def load(apps, schema_editor):
    from qifu.engine.requests.categories import CATEGORIES

    Department = apps.get_model("service_requests", "Department")
    CategorySetting = apps.get_model("service_requests", "CategorySetting")
    for c in CATEGORIES:
        dep, _ = Department.objects.get_or_create(name=c.department)
        CategorySetting.objects.update_or_create(code=c.code, defaults={
            "name": c.name, "department": dep, "sign_days": c.sign_days, "answer_days": c.answer_days})


class Migration(migrations.Migration):
    dependencies = [("service_requests", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
