from isorun_runner.cli import main

main()
