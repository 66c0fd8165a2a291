from django.db import migrations

# Until now the firms an application policy (需申请) found were never told. Their matches stored
# before this release wait, as a match run told not to notify leaves them (``Match.quiet``),
# for the next match run that notifies: staff choose when, rather than the morning's job
# telling every firm of every old invitation at once.
WAIT = """
UPDATE policies_match SET quiet = TRUE
WHERE status = 'eligible' AND told_at IS NULL
  AND policy_id IN (SELECT id FROM policies_policy WHERE mode = 'application')
"""


class Migration(migrations.Migration):

    dependencies = [
        ('policies', '0006_match_declined'),
    ]

    operations = [migrations.RunSQL(WAIT, migrations.RunSQL.noop)]
