from fireflan.cli import main

main()
