// placeholder until the StateStore issue lands
