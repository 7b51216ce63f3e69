from resnetcli.cli import main

main()
