from ecgkit.cli import main

main()
