"""The abnormal-operation list (经营异常名录): after 30 June, the enterprises and cooperatives
that did not file the year's report are listed (an individual business is marked 经营异常状态
instead); one that files late (补报) applies to come off (申请移出) and the bureau removes it; one
listed three years goes on the serious list, so it is warned before. See docs/abnormal.md."""
