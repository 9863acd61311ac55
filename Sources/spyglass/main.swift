import SpyglassCLI

SpyglassCommand.main()
