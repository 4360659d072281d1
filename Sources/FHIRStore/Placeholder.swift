// placeholder until the FHIRStore issue lands
