// placeholder until the CaresyncCLI issue lands
