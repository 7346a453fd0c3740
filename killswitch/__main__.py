from killswitch.cli.main import main

main()
