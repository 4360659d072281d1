// placeholder until the FHIRClient issue lands
