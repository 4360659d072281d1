import ArgumentParser
import CaresyncCLI

@main
extension CaresyncCommand {}
