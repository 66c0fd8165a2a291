"""Spot checks of the published annual reports (年报抽查): the bureau draws entities at random
from those that filed the year's report (双随机: the entities by a published seed, two inspectors
for each at random), or from those an expression over the entity profile selects (定向抽查: open
findings of the quality rules, say); the inspectors record what they found, the result is public
to the entity, and a report found false or an address found empty lists it on the
abnormal-operation list. See docs/inspections.md."""
