import ArgumentParser
import CaresyncCLI

await CaresyncCommand.main()
