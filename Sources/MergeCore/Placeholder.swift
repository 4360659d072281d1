// placeholder until the MergeCore issue lands
