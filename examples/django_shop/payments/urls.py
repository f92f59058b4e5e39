from django.urls import path

from payments import views

urlpatterns = [
    path("deposit/", views.deposit),
    path("saved-card/", views.pay_with_saved_card),
    path("webhook/", views.webhook),
    path("response/", views.response),
    path("status/<int:deposit_id>/", views.status),
]
