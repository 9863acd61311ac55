import SpyglassCLI

SpyglassCommand.run(arguments: Array(CommandLine.arguments.dropFirst()))
