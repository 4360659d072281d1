import CaresyncCLI

await CaresyncCommand.main()
