"""The REST API: serializers parse, views authorise and call one service, answers are shaped
here. Objects outside the user's datasets answer 404; admin-only actions answer 403."""
