from paude.cli import main

main()
