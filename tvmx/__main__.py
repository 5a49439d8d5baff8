from tvmx.cli import main

main()
